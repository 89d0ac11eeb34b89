"""The build stamp: a record of what the last good build saw, so that a rebuild
with nothing changed is known as such from a directory scan alone.

The stamp holds a hash of the config file, a fingerprint of the inputs
(templates, the path, mtime and size of every post file), the size and mtime of
every output file, and when the next future-dated post comes due.  If all still
hold, the build has nothing to do and opens neither the database nor a post.
It also holds a snapshot of the config values the build read
(:mod:`publisher.snapshot`), so that a build with a few changed posts can run
without validating the config again (:mod:`publisher.quickbuild`).

This module is on the fast path of ``publisher build``: it imports nothing
heavy (no pydantic, no SQLAlchemy), so that ``publisher build`` with nothing
changed costs little more than the scan (:func:`find`, :func:`look_at`).  The stamp is a cache:
deleting it only costs one full (still incremental) build.
"""

from __future__ import annotations

import json
import marshal
import os
import tomllib
from datetime import datetime
from pathlib import Path
from collections.abc import Collection, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from publisher import __version__
from publisher.resources import template_dir
from publisher.scan import FileStat, scan_posts

if TYPE_CHECKING:
    from publisher.config import Config
    from publisher.snapshot import Snapshot

STAMP_NAME = "build-stamp.json"
FILES_NAME = "build-stamp.files"  # the post files the stamped build saw (marshal): see changed_since


def stamp_path(state_dir: Path) -> Path:
    return state_dir / STAMP_NAME


def files_path(state_dir: Path) -> Path:
    return state_dir / FILES_NAME


try:  # hashlib's own BLAKE2, without hashlib, which loads OpenSSL (~2 ms of a build with nothing changed)
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - a Python built without it
    from hashlib import blake2b


def _digest(data: bytes) -> str:
    return blake2b(data, digest_size=16).hexdigest()


def fingerprint(stats: list[FileStat], template_dirs: list[str], database_url: str) -> str:
    """Everything besides the config file that a build reads."""
    digest = blake2b(digest_size=16)
    digest.update(f"{__version__}\0{database_url}\0".encode())
    for folder in [*template_dirs, str(template_dir())]:
        for name, mtime_ns, size in _listing(folder):
            digest.update(f"T{name}\0{mtime_ns}\0{size}\n".encode())
    digest.update("".join([f"{path}\0{mtime_ns}\0{size}\n" for path, mtime_ns, size in stats]).encode())
    return digest.hexdigest()


def _listing(folder: str) -> list[tuple[str, int, int]]:
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError:
        return []
    return [(e.name, e.stat().st_mtime_ns, e.stat().st_size) for e in entries if e.is_file()]


def _outputs(paths: list[str]) -> dict[str, list[int]]:
    found = {}
    for path in paths:
        try:
            stat = os.stat(path)
        except OSError:
            continue
        found[path] = [stat.st_mtime_ns, stat.st_size]
    return found


def config_digest(config: Config | Snapshot) -> str:
    """The hash of the config file's bytes (a Builder takes it at its first build, close to when the config
    was read, and stamps every build with it: the stamp's snapshot of the config is keyed by it)."""
    return _digest(config.path.read_bytes())


def _config_inputs(config: Config | Snapshot, config_hash: str) -> dict[str, Any]:
    return {"config_hash": config_hash, "path": str(config.path), "posts_root": str(config.posts_root),
            "folders": list(config.posts.folders), "template_dirs": [str(p) for p in config.template_dirs],
            "database_url": config.database_url}


def _holds(stamp: dict[str, Any], inputs: str, now: datetime) -> bool:
    if stamp["inputs"] != inputs:
        return False
    if stamp["next_due"] is not None and now >= datetime.fromisoformat(stamp["next_due"]):
        return False
    return _outputs(list(stamp["outputs"])) == stamp["outputs"]


def _load(path: Path) -> dict[str, Any] | None:
    try:
        stamp = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return stamp if isinstance(stamp, dict) else None


def inputs_digest(config: Config | Snapshot, stats: list[FileStat]) -> str:
    """The fingerprint of a build's inputs besides the config file (computed once per build)."""
    return fingerprint(stats, [str(p) for p in config.template_dirs], config.database_url)


def is_fresh(config: Config | Snapshot, config_hash: str, inputs: str, now: datetime) -> bool:
    """True when the last build saw exactly these inputs, its outputs are untouched and nothing has come due."""
    stamp = current(config)
    try:
        return (stamp is not None and stamp["config"] == _config_inputs(config, config_hash)
                and _holds(stamp, inputs, now))
    except (KeyError, TypeError, ValueError):
        return False


def save(config: Config | Snapshot, config_hash: str, inputs: str, outputs: list[Path],
         next_due: datetime | None, stats: list[FileStat] | None = None) -> None:
    """Record a good build, with the snapshot of the config values it read (for :mod:`publisher.quickbuild`) and
    the post files it saw (for :func:`changed_since`), which the database now holds exactly."""
    from publisher.output import write_atomic
    from publisher.snapshot import take

    stamp = {"config": _config_inputs(config, config_hash), "inputs": inputs, "snapshot": take(config),
             "outputs": _outputs([str(p) for p in outputs]), "next_due": next_due.isoformat() if next_due else None}
    if stats is not None:
        write_atomic(files_path(config.state_dir), _record(inputs, _files_scope(config), stats), durable=False)
    write_atomic(stamp_path(config.state_dir), json.dumps(stamp).encode(), durable=False)  # order kept


def forget(config: Config | Snapshot) -> None:
    stamp_path(config.state_dir).unlink(missing_ok=True)
    files_path(config.state_dir).unlink(missing_ok=True)


def current(config: Config | Snapshot) -> dict[str, Any] | None:
    """The stamp as it is now (None: there is none)."""
    return _load(stamp_path(config.state_dir))


def _files_scope(config: Config | Snapshot) -> tuple[str, str, tuple[str, ...]]:
    return _scope(_config_inputs(config, ""))


def _scope(config_inputs: dict[str, Any]) -> tuple[str, str, tuple[str, ...]]:
    """What the recorded paths are relative to, from a stamp's config inputs: a record made under another is no
    use."""
    return config_inputs["database_url"], config_inputs["posts_root"], tuple(config_inputs["folders"])


def changed_since(config: Config | Snapshot, stats: list[FileStat]) -> set[str] | None:
    """The paths of the post files that are new, changed or gone in ``stats`` since the stamped build; None when
    that is not known (no stamp, no record of its files, a record for other folders or another database).

    The stamp is saved after the build's sync committed and forgotten before any build touches the database, so
    while both files are there (and belong together) the database holds exactly the recorded files.
    """
    stamp = current(config)
    try:
        inputs, scope, files = marshal.loads(files_path(config.state_dir).read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if stamp is None or stamp.get("inputs") != inputs or scope != _files_scope(config):
        return None
    try:
        return _difference(stats, files)
    except (TypeError, ValueError):  # not a list of (path, mtime, size): a record from elsewhere
        return None


def _difference(stats: list[FileStat], files: list[tuple[str, int, int]]) -> set[str]:
    """The paths whose (path, mtime, size) is in one list and not the other (both sorted by path)."""
    if any(type(file) is not tuple or len(file) != 3 for file in files[:1]):
        raise TypeError("not a list of (path, mtime, size)")
    if len(stats) == len(files):  # most often the same files, a few of them changed: compare them in step
        moved = [n for n, (now, then) in enumerate(zip(stats, files)) if now != then]
        if all(stats[n][0] == files[n][0] for n in moved):
            return {stats[n][0] for n in moved}
    return {path for path, _mtime, _size in set(stats).symmetric_difference(files)}


def nothing_changed_line(scanned: int, elapsed: float) -> str:
    return f"build: nothing changed ({scanned} posts scanned) in {elapsed:.2f}s"


class Look(NamedTuple):
    """What a look at the stamp saw: the stamp, a fresh scan, and whether nothing has changed.

    A named tuple, not a dataclass: ``dataclasses`` costs a build with nothing changed ~5 ms to import.
    """

    stamp: dict[str, Any]
    stats: list[FileStat] | Listing
    inputs: str  # the fingerprint of the inputs as scanned
    fresh: bool
    changed: set[str] | None = None  # when known, the paths changed since the stamp (see changed_since)

    def packed(self) -> tuple[Any, ...]:
        """What :meth:`unpacked` takes back (values :mod:`marshal` writes; the stamp is the receiver's own): for a
        fresh look, the number of files (all the line saying so shows); else also the changed paths, their files,
        and the record of every file that :func:`save` writes (see :class:`Listing`)."""
        if self.fresh:
            return True, self.inputs, len(self.stats)
        scope = _scope(self.stamp["config"])
        changed = self.changed or ()
        return (False, self.inputs, len(self.stats), self.changed,
                [tuple(stat) for stat in self.stats if stat.path in changed], scope,
                _record(self.inputs, scope, self.stats))

    @classmethod
    def unpacked(cls, stamp: dict[str, Any], packed: tuple[Any, ...]) -> Look:
        if packed[0]:
            _, inputs, count = packed
            return cls(stamp, [None] * count, inputs, True)  # type: ignore[list-item] # only its length is read
        _, inputs, count, changed, files, scope, record = packed
        return cls(stamp, Listing(count, record, inputs, scope, changed, files), inputs, False, changed)


class Listing(Sequence[FileStat]):
    """A scan's files as a helper process sent them: their number, those among the changed paths, and the
    record :func:`save` writes; made into ten thousand FileStats only if something reads them all."""

    def __init__(self, count: int, record: bytes, inputs: str, scope: tuple[str, str, tuple[str, ...]],
                 changed: set[str] | None, files: list[tuple[str, int, int]]) -> None:
        """``files``: those of the scan at the ``changed`` paths (None: not known)."""
        self._count, self.record, self.inputs, self.scope = count, record, inputs, scope
        self._changed = changed
        self._among_changed = [tuple.__new__(FileStat, file) for file in files]
        self._files: list[FileStat] | None = None

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: Any) -> Any:
        return self.files()[index]

    def __iter__(self) -> Iterator[FileStat]:
        return iter(self.files())

    def files(self) -> list[FileStat]:
        if self._files is None:
            self._files = [tuple.__new__(FileStat, file) for file in marshal.loads(self.record)[2]]
        return self._files

    def among(self, paths: Collection[str]) -> list[FileStat]:
        """The files at ``paths``."""
        if self._changed is not None and self._changed.issuperset(paths):
            return [stat for stat in self._among_changed if stat.path in paths]
        return [stat for stat in self.files() if stat.path in paths]


def files_among(stats: list[FileStat] | Listing, paths: Collection[str]) -> list[FileStat]:
    """The files of ``stats`` at ``paths`` (the changed paths of the look that made ``stats``)."""
    if isinstance(stats, Listing):
        return stats.among(paths)
    return [stat for stat in stats if stat.path in paths]


def _record(inputs: str, scope: tuple[str, str, tuple[str, ...]], stats: list[FileStat] | Listing) -> bytes:
    """What :func:`changed_since` reads back: the inputs' fingerprint, what the paths are relative to, the files."""
    if isinstance(stats, Listing) and (stats.inputs, stats.scope) == (inputs, scope):
        return stats.record
    return marshal.dumps((inputs, scope, [tuple(stat) for stat in stats]), 2)


def find(config_path: Path) -> dict[str, Any] | None:
    """The stamp of the config file at ``config_path``; None unless it was made from these very config bytes at
    this very place.

    Reads the raw config only to find the state folder: the stamp holds the rest.
    """
    raw = config_path.read_bytes()
    state = tomllib.loads(raw.decode()).get("state", {}).get("directory", "state")
    stamp = _load(stamp_path(config_path.absolute().parent / state))
    if stamp is None:
        return None
    inputs = stamp["config"]
    if inputs["config_hash"] != _digest(raw) or inputs["path"] != str(config_path.absolute()):
        return None
    return stamp


def look_at(stamp: dict[str, Any], now: datetime) -> Look:
    """A scan of the posts that ``stamp`` (from :func:`find`) names, held against it."""
    inputs = stamp["config"]
    stats = scan_posts(Path(inputs["posts_root"]), inputs["folders"])
    digest = fingerprint(stats, inputs["template_dirs"], inputs["database_url"])
    return Look(stamp, stats, digest, _holds(stamp, digest, now))
