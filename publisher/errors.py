"""The one exception tree of publisher.

Every error the user can cause is a :class:`PublisherError`; ``str(error)`` is a
single line that names the file, field or thing at fault and what to do about
it.  The CLI prints that line and exits non-zero.  Errors are raised ``from``
the low-level exception that caused them so tracebacks stay useful in logs.
"""

from __future__ import annotations


class PublisherError(Exception):
    """Base class: a problem the operator can fix; ``str()`` is one line."""


class ConfigError(PublisherError):
    """The configuration file is missing, unreadable or invalid.

    ``problems`` lists one line per bad key (``"feeds.entries: must be >= 1"``).
    """

    def __init__(self, path: object, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = list(problems)
        first = self.problems[0] if self.problems else "invalid"
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(f"{self.path}: {first}{more}")


class PostError(PublisherError):
    """A post file can't be read: bad UTF-8, broken attributes, impossible date, empty."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class RenderError(PublisherError):
    """A post or template can't be rendered."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class StateError(PublisherError):
    """The state database can't be opened, migrated, read or written."""

    def __init__(self, database: object, reason: str) -> None:
        self.database = str(database)
        self.reason = reason
        super().__init__(f"state database {self.database}: {reason}")


class OutputError(PublisherError):
    """An output file (feed, stylesheet) can't be written."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class DeliveryError(PublisherError):
    """A mail provider can't be used: unreachable, refused credentials, misconfigured.

    ``provider`` names the configured provider; ``response`` holds what the
    service answered (status and first line), never a secret.
    """

    def __init__(self, provider: str, reason: str, *, response: str | None = None, transient: bool = True,
                 retry_after: float | None = None) -> None:
        self.provider = provider
        self.reason = reason
        self.response = response
        self.transient = transient
        self.retry_after = retry_after
        super().__init__(f"provider {provider}: {reason}")


class DigestError(PublisherError):
    """A digest can't be composed (template error, unknown list) or sent."""

    def __init__(self, list_name: str, reason: str) -> None:
        self.list_name = list_name
        self.reason = reason
        super().__init__(f"list {list_name}: {reason}")


class SubscriberError(PublisherError):
    """A subscriber operation failed: bad address, unknown subscriber, bad CSV row."""

    def __init__(self, subject: str, reason: str) -> None:
        self.subject = subject
        self.reason = reason
        super().__init__(f"{subject}: {reason}")


class TokenError(PublisherError):
    """A signed link's token is malformed, forged, altered or expired."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"invalid link: {reason}")
