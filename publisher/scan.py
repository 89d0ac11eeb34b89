"""Finding post files: a walk of the configured folders, stat only (no reads)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from publisher.errors import PublisherError
from publisher.posts import post_format


class ScanError(PublisherError):
    """The posts folder can't be listed (missing, unreadable, vanished mid-scan)."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        super().__init__(f"{self.path}: {reason}")


@dataclass(frozen=True, slots=True)
class FileStat:
    path: str  # posix, relative to the posts root
    mtime_ns: int
    size: int


def scan_posts(root: Path, folders: list[str]) -> list[FileStat]:
    """Every post file under ``root`` (or under each of ``folders`` inside it), sorted by path."""
    if not root.is_dir():
        raise ScanError(root, "posts folder not found; check posts.root in the config")
    found: list[FileStat] = []
    for folder in folders or [""]:
        start = root / folder if folder else root
        if not start.is_dir():
            raise ScanError(start, "posts folder not found; check posts.folders in the config")
        prefix = f"{Path(folder).as_posix()}/" if folder else ""
        _walk(start, prefix, found)
    found.sort(key=lambda stat: stat.path)
    return found


def _walk(directory: Path, prefix: str, found: list[FileStat]) -> None:
    try:
        entries = list(os.scandir(directory))
    except OSError as exc:
        raise ScanError(directory, f"can't list the folder ({exc.strerror}); it will be retried") from exc
    for entry in entries:
        name = entry.name
        if name.startswith(".") or name.endswith("~"):
            continue
        try:
            if entry.is_dir():
                _walk(Path(entry.path), f"{prefix}{name}/", found)
            elif post_format(name) is not None:
                stat = entry.stat()
                found.append(FileStat(prefix + name, stat.st_mtime_ns, stat.st_size))
        except FileNotFoundError:
            continue  # deleted between listing and stat: it is simply gone
