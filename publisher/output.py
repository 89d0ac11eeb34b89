"""Writing output files atomically, and only when their bytes change."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from publisher.errors import OutputError


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` unless it already holds exactly that; True if written.

    The write goes to a temporary file in the same folder, is flushed to disk,
    then renamed over the target, so a reader sees the old file or the new one,
    never half of one.
    """
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise OutputError(path, f"can't read the existing file ({exc.strerror})") from exc
    write_atomic(path, data)
    return True


def write_atomic(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OutputError(path, f"can't create the file ({exc.strerror}); check feeds.output and its permissions") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(path, f"can't write the file ({exc.strerror}); nothing was replaced") from exc
