"""Finding post files: a walk of the configured folders, stat only (no reads).

This module is on the fast path of ``publisher build`` (see :mod:`publisher.stamp`):
it imports nothing but the standard library's ``os`` and the error classes.
"""

from __future__ import annotations

import os
from collections import namedtuple
from pathlib import Path
from stat import S_ISDIR

from publisher.errors import PublisherError

__all__ = ["POST_FORMATS", "FileStat", "ScanError", "post_format", "scan_posts"]

# File extensions (lower case) of post files, and the body format each means.
POST_FORMATS = {"markdown": "markdown", "md": "markdown", "mdown": "markdown", "html": "html", "htm": "html"}


class ScanError(PublisherError):
    """The posts folder can't be listed (missing, unreadable, vanished mid-scan)."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        super().__init__(f"{self.path}: {reason}")


# A named tuple, not a dataclass: ten thousand of them are made on every build.
FileStat = namedtuple("FileStat", ["path", "mtime_ns", "size"])
FileStat.__doc__ = "One post file: its posix path relative to the posts root, mtime (ns) and size."


def post_format(path: str) -> str | None:
    """``"markdown"`` or ``"html"`` when the file named by ``path`` is a post, else None.

    Hidden files (``.name``) are never posts; the last extension decides:
    ``markdown``/``md``/``mdown`` or ``html``/``htm`` (any case).
    """
    filename = path.rpartition("/")[2]
    if not filename or filename[0] == "." or "." not in filename:
        return None
    return POST_FORMATS.get(filename.rpartition(".")[2].lower())


def scan_posts(root: Path | str, folders: list[str]) -> list[FileStat]:
    """Every post file under ``root`` (or under each of ``folders`` inside it), sorted by path."""
    root = str(root)
    if not os.path.isdir(root):
        raise ScanError(root, "posts folder not found; check posts.root in the config")
    found: list[FileStat] = []
    for folder in folders or [""]:
        start = os.path.join(root, folder) if folder else root
        if not os.path.isdir(start):
            raise ScanError(start, "posts folder not found; check posts.folders in the config")
        prefix = f"{Path(folder).as_posix()}/" if folder else ""
        _walk(start, prefix, found)
    found.sort()
    return found


def _walk(directory: str, prefix: str, found: list[FileStat]) -> None:
    """Add the post files under ``directory`` to ``found``: one ``stat`` per post file, relative to the open
    folder (a third cheaper than ``DirEntry.stat()``), and none for anything else."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise ScanError(directory, f"can't list the folder ({exc.strerror}); it will be retried") from exc
    try:
        try:
            with os.scandir(fd) as listing:
                entries = list(listing)
        except OSError as exc:
            raise ScanError(directory, f"can't list the folder ({exc.strerror}); it will be retried") from exc
        _stat_entries(directory, fd, entries, prefix, found)
    finally:
        os.close(fd)


def _stat_entries(directory: str, fd: int, entries: list[os.DirEntry[str]], prefix: str,
                  found: list[FileStat]) -> None:
    formats, append, stat, make = POST_FORMATS, found.append, os.stat, tuple.__new__
    for entry in entries:
        name = entry.name
        if name[0] == "." or name[-1] == "~":
            continue
        extension = name[name.rfind(".") + 1:]
        try:
            if extension != name and (extension in formats or extension.lower() in formats):
                info = stat(name, dir_fd=fd)
                if not S_ISDIR(info.st_mode):
                    append(make(FileStat, (prefix + name, info.st_mtime_ns, info.st_size)))
                    continue
            elif not entry.is_dir():
                continue
            _walk(os.path.join(directory, name), f"{prefix}{name}/", found)
        except FileNotFoundError:
            continue  # deleted between listing and stat: it is simply gone
