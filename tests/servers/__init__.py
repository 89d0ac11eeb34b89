"""Real servers on 127.0.0.1 for the tests: nothing here ever touches the network.

- :mod:`tests.servers.smtp`: an aiosmtpd server (plain, STARTTLS, implicit TLS, AUTH) that records
  every message and can be told to fail, drop or stall per RCPT or DATA.
- :mod:`tests.servers.mailapi`: a local HTTP server speaking the Mailgun, Postmark and SendGrid APIs.
"""
