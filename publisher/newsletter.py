"""Digests end to end: a list's schedule slot -> a composed digest -> a send.

This is what the daemon's digest jobs and the ``publisher digest`` commands
call.  Composition (:mod:`publisher.digest`) and sending
(:mod:`publisher.delivery`) stay separate stages; this module only decides
*which* slot is due and wires the two together.

Slots: a list's cron, in its timezone, fires at slots.  A digest is stored
once per (list, slot), so a slot is never sent twice, even by two daemons.
When the daemon was down at a slot it sends that slot's digest when it comes
back, if it is back within the list's grace time; after that the slot is
skipped (the posts go out in the next digest, since a digest covers
everything first published after the previous one).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from publisher.clock import Clock
from publisher.config import Config
from publisher.digest.select import latest_slot
from publisher.errors import DigestError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DigestOutcome:
    """What one digest job did: nothing new, composed and sent, or still retrying."""

    list_name: str
    slot: datetime | None
    digest_id: int | None
    report: Any = None  # publisher.delivery.SendReport

    def line(self) -> str:
        if self.digest_id is None and self.slot is None:
            return f"list {self.list_name}: no slot due within the grace time; nothing sent"
        if self.digest_id is None:
            return f"list {self.list_name}: no new posts since the last digest; nothing sent"
        return f"list {self.list_name}: {self.report.line() if self.report else f'digest {self.digest_id} composed'}"


class Newsletter:
    """Compose and send digests for the configured lists (one state database)."""

    def __init__(self, config: Config, store: Any, *, clock: Clock | None = None,
                 environ: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.store = store
        self.clock = clock or Clock()
        self.environ = os.environ if environ is None else environ

    def composer(self) -> Any:
        from publisher.digest.compose import Composer

        return Composer(self.config, self.store, clock=self.clock)

    def sender(self) -> Any:
        from publisher.delivery import Sender

        return Sender(self.config, self.store, clock=self.clock, environ=self.environ)

    def run_slot(self, list_name: str, slot: datetime, *, progress: Any = None) -> DigestOutcome:
        """Compose the digest for ``slot`` (or find it, if already stored) and send what is left of it."""
        self.config.mailing_list(list_name)
        composed = self.composer().compose(list_name, slot)
        if composed is None:
            log.info("list %s: no new posts since the last digest; no digest for %s", list_name, slot.isoformat())
            return DigestOutcome(list_name, slot, None)
        report = self.sender().send(composed.digest_id, progress=progress)
        return DigestOutcome(list_name, slot, composed.digest_id, report)

    def run_due(self, list_name: str) -> DigestOutcome:
        """The scheduled job: the list's latest slot within its grace time, if any."""
        mailing_list = self.config.mailing_list(list_name)
        slot = latest_slot(mailing_list, self.clock.now())
        if slot is None:
            log.debug("list %s: no slot within the grace time (%ss)", list_name, mailing_list.grace)
            return DigestOutcome(list_name, None, None)
        return self.run_slot(list_name, slot)

    def send_now(self, list_name: str, *, progress: Any = None) -> DigestOutcome:
        """``publisher digest send``: first finish the list's interrupted digests (a restart after a crash
        resumes them), then a digest for a manual slot at the current time, if anything is new."""
        self.config.mailing_list(list_name)
        resumed = [self.sender().send(digest_id, progress=progress) for digest_id in unfinished(self.store, list_name)]
        now = self.clock.now().replace(microsecond=0)
        outcome = self.run_slot(list_name, now, progress=progress)
        if outcome.digest_id is None and resumed:
            return DigestOutcome(list_name, None, resumed[-1].digest_id, resumed[-1])
        return outcome

    def resume(self) -> list[Any]:
        """Carry on with every digest that still has work (retries due, or a dead sender's lease)."""
        from publisher.ledger import Ledger

        reports = []
        for digest_id in Ledger(self.store, clock=self.clock).pending_digests():
            reports.append(self.sender().send(digest_id))
        return reports

    def preview(self, list_name: str, out_dir: Path, *, latest: bool = False) -> list[Path]:
        """Write the next digest's HTML, text and .eml to ``out_dir``; store and send nothing."""
        composed = self._preview(list_name, latest=latest)
        recipient = preview_recipient(self.config, list_name)
        letter = composed.letter
        out_dir.mkdir(parents=True, exist_ok=True)
        from publisher.mail.mime import MimeEncoder

        files = {
            f"{list_name}.html": letter.html_for(recipient).encode(),
            f"{list_name}.txt": letter.text_for(recipient).encode(),
            f"{list_name}.eml": MimeEncoder().encode(letter, recipient),
        }
        paths = []
        for name, data in files.items():
            (out_dir / name).write_bytes(data)
            paths.append(out_dir / name)
        return paths

    def _preview(self, list_name: str, *, latest: bool = False) -> Any:
        composed = self.composer().preview(list_name, latest=latest)
        if composed is None:
            hint = "" if latest else "; add --latest to preview with the latest posts"
            raise DigestError(list_name, f"no posts new since the last digest, so no digest to preview{hint}")
        return composed

    def send_test(self, list_name: str, address: str, *, latest: bool = False) -> Any:
        """Send one test copy of the next digest to ``address`` through the list's provider; record nothing."""
        from publisher.providers import provider_for
        from publisher.subscribers import normalise_email

        mailing_list = self.config.mailing_list(list_name)
        composed = self._preview(list_name, latest=latest)
        recipient = preview_recipient(self.config, list_name, normalise_email(address))
        provider = provider_for(self.config, mailing_list.provider, environ=self.environ, clock=self.clock)
        with provider:
            (result,) = provider.send(composed.letter, [recipient])
        if result.outcome != "sent":
            raise DigestError(list_name, f"test copy to {address} not sent: {result.reason}")
        return result


def preview_recipient(config: Config, list_name: str, email: str = "preview@example.invalid") -> Any:
    """A stand-in recipient for previews and test sends (a random Message-ID; an unsubscribe link that does nothing)."""
    import secrets

    from publisher.mail.letter import Recipient

    message_id = f"<preview.{secrets.token_hex(8)}@{config.message_id_domain}>"
    return Recipient(0, 0, email, "Preview Reader", message_id, config.web_url + "unsubscribe")


def recent_digests(store: Any, *, digest_id: int | None = None, limit: int = 10) -> list[Any]:
    """The latest digests (newest first), or the one with ``digest_id``."""
    from sqlalchemy import select

    from publisher.schema import digests

    columns = (digests.c.id, digests.c.list, digests.c.created_at, digests.c.status, digests.c.recipients)
    query = select(*columns).order_by(digests.c.id.desc()).limit(limit)
    if digest_id is not None:
        query = query.where(digests.c.id == digest_id)
    with store.begin() as conn:
        return list(conn.execute(query))


def unfinished(store: Any, list_name: str) -> list[int]:
    """The list's digests not yet sent to everyone (composed or sending), oldest first."""
    from sqlalchemy import select

    from publisher.schema import digests

    query = select(digests.c.id).where(digests.c.list == list_name, digests.c.status != "sent").order_by(digests.c.id)
    with store.begin() as conn:
        return list(conn.scalars(query))
