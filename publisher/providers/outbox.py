"""The outbox provider: each message written as an ``.eml`` file, no account needed.

Files go to ``<directory>/<digest id>/<Message-ID>.eml`` (``test/`` for previews and test sends,
whose letters have no digest ID); ``directory`` is relative to the configuration file.  Each file is
written to a temporary name and renamed into place, so a reader never sees half a message and a
resend of the same Message-ID replaces the file instead of adding a second one: a digest resumed
after a crash leaves exactly one file per subscriber.  Files are not fsynced (the outbox is for
trying things out; a crash of the process never leaves a partial file, a power cut may lose the
last few).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from publisher.errors import DeliveryError
from publisher.mail.letter import Letter, Recipient
from publisher.providers.base import Provider, Result

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+=-]")


class OutboxProvider(Provider):
    """Writes ``.eml`` files; every recipient comes back ``sent``."""

    type = "outbox"
    max_batch = 1000

    @property
    def directory(self) -> Path:
        """The outbox folder: ``config.directory`` resolved against the configuration file's folder."""
        directory = Path(self.config.directory)
        if not directory.is_absolute() and self.base_dir is not None:
            directory = Path(self.base_dir) / directory
        return directory

    def folder(self, letter: Letter) -> Path:
        return self.directory / (str(letter.digest_id) if letter.digest_id is not None else "test")

    def send(self, letter: Letter, batch: Sequence[Recipient]) -> list[Result]:
        """Write one file per recipient.

        Raises DeliveryError (transient) naming the folder when it can't be written; that is safe
        even after part of the batch was written, because writing a message again replaces its file.
        """
        folder = self.folder(letter)
        encode = _encoder(self.encoder, letter)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            results = [self._write(folder, recipient, encode(recipient)) for recipient in batch]
        except OSError as exc:
            raise DeliveryError(self.name, f"cannot write to outbox folder {folder}: {exc.strerror or exc}; "
                                "check it exists, is writable and the disk has space") from exc
        log.debug("%s: wrote %d message(s) to %s", self.name, len(results), folder)
        return results

    def _write(self, folder: Path, recipient: Recipient, data: bytes) -> Result:
        name = file_name(recipient.message_id)
        write_atomically(folder / name, data)
        return Result(recipient.delivery_id, "sent", provider_id=name)


def _encoder(encoder: object, letter: Letter):  # type: ignore[no-untyped-def]
    """``recipient -> bytes``: the encoder's prepared fast path when it has one."""
    prepare = getattr(encoder, "prepare", None)
    if prepare is not None:
        return prepare(letter).encode
    return lambda recipient: encoder.encode(letter, recipient)  # type: ignore[attr-defined]


def file_name(message_id: str) -> str:
    """A file name for a Message-ID: its safe characters, plus a hash when anything had to change."""
    raw = message_id.strip().removeprefix("<").removesuffix(">")
    safe = _UNSAFE.sub("_", raw)[:150].lstrip(".") or "message"
    if safe != raw:
        safe += "-" + hashlib.sha256(message_id.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return safe + ".eml"


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it over ``path``."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".eml")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
