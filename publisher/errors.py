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
