"""The base every mail provider implements, and what a send reports back.

A provider takes one :class:`~publisher.mail.letter.Letter` (shared by the
batch) and a batch of at most ``max_batch`` recipients, hands them to its
service, and returns one :class:`Result` per recipient, in order.  It never
raises for a single recipient's failure: that is a ``failed`` or ``deferred``
result.  It raises :class:`~publisher.errors.DeliveryError` only when the whole
batch could not be handed over *and* nothing in it may have been accepted
(then every recipient is retried later).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from publisher.clock import Clock
from publisher.mail.letter import Letter, Recipient
from publisher.mail.mime import MimeEncoder

Outcome = Literal["sent", "deferred", "failed"]


@dataclass(frozen=True, slots=True)
class Result:
    """What happened to one recipient of a batch."""

    delivery_id: int
    outcome: Outcome
    reason: str | None = None  # for deferred and failed: one line, e.g. "smtp 452 4.2.2 mailbox full"
    retry_after: float | None = None  # seconds the service asked us to wait (Retry-After, X-RateLimit-Reset)
    provider_id: str | None = None  # the service's own message ID
    bounce: bool = False  # a permanent failure that means the address is bad (hard bounce)


class Provider(ABC):
    """One way to hand messages over: subclasses set ``type`` and implement :meth:`send`."""

    type: ClassVar[str]
    max_batch: int = 1  # recipients per send() call

    def __init__(self, config: Any, *, name: str, environ: Mapping[str, str], encoder: MimeEncoder | None = None,
                 clock: Clock | None = None, base_dir: Any = None) -> None:
        self.config = config
        self.name = name
        self.environ = environ
        self.encoder = encoder or MimeEncoder()
        self.clock = clock or Clock()
        self.base_dir = base_dir

    def open(self) -> None:  # noqa: B027 - optional hook
        """Connect, check credentials; raise DeliveryError naming the provider and what to fix."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    @abstractmethod
    def send(self, letter: Letter, batch: Sequence[Recipient]) -> list[Result]:
        """Hand ``batch`` over; one Result per recipient, in the same order."""

    def __enter__(self) -> Provider:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
