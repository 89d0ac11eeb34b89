"""Writing output files atomically, and only when their bytes change."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from publisher.errors import OutputError


def _holds(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise OutputError(path, f"can't read the existing file ({exc.strerror})") from exc


class Writer:
    """Files written only when their bytes change, each with :func:`write_atomic` in a thread of its own, so
    that its wait for the disk overlaps the caller's next work (rendering the next feed).  Leaving the
    ``with`` block waits for every write and raises the first error."""

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []
        self._errors: list[OutputError] = []

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        for thread in self._threads:
            thread.join()
        self._threads.clear()
        if self._errors and kind is None:
            raise self._errors[0]

    def write_if_changed(self, path: Path, data: bytes) -> bool:
        """Start writing ``data`` to ``path`` unless it already holds exactly that; True if it is written."""
        if _holds(path, data):
            return False
        thread = threading.Thread(target=self._replace, args=(path, data), name=f"publisher write {path.name}")
        thread.start()
        self._threads.append(thread)
        return True

    def _replace(self, path: Path, data: bytes) -> None:
        try:
            write_atomic(path, data)
        except OutputError as exc:
            self._errors.append(exc)


def write_atomic(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` at once: a reader sees the old file or the new one, never a part.

    ``durable``: the data reaches the disk before the rename (a crash then leaves the old or the new file,
    never an empty one); a cache that is checked when read can skip that wait.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _temporary(path)
    except OSError as exc:
        raise OutputError(path, f"can't create the file ({exc.strerror}); check feeds.output and its permissions") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(path, f"can't write the file ({exc.strerror}); nothing was replaced") from exc


def _temporary(path: Path) -> tuple[int, str]:
    """A new file beside ``path``, open for writing, mode 0600 (as ``tempfile.mkstemp`` makes one, without
    importing tempfile and random on every build)."""
    while True:
        tmp = str(path.parent / f".{path.name}.{os.urandom(6).hex()}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), tmp
        except FileExistsError:
            continue
