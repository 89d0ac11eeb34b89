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

import hashlib
import json
import os
import tomllib
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from publisher import __version__
from publisher.resources import template_dir
from publisher.scan import FileStat, scan_posts

if TYPE_CHECKING:
    from publisher.config import Config
    from publisher.snapshot import Snapshot

STAMP_NAME = "build-stamp.json"


def stamp_path(state_dir: Path) -> Path:
    return state_dir / STAMP_NAME


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def fingerprint(stats: list[FileStat], template_dirs: list[str], database_url: str) -> str:
    """Everything besides the config file that a build reads."""
    digest = hashlib.blake2b(digest_size=16)
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
    stamp = _load(stamp_path(config.state_dir))
    try:
        return (stamp is not None and stamp["config"] == _config_inputs(config, config_hash)
                and _holds(stamp, inputs, now))
    except (KeyError, TypeError, ValueError):
        return False


def save(config: Config | Snapshot, config_hash: str, inputs: str, outputs: list[Path],
         next_due: datetime | None) -> None:
    """Record a good build, with the snapshot of the config values it read (for :mod:`publisher.quickbuild`)."""
    from publisher.output import write_atomic
    from publisher.snapshot import take

    stamp = {"config": _config_inputs(config, config_hash), "inputs": inputs, "snapshot": take(config),
             "outputs": _outputs([str(p) for p in outputs]), "next_due": next_due.isoformat() if next_due else None}
    write_atomic(stamp_path(config.state_dir), json.dumps(stamp).encode())  # key order kept: it can matter


def forget(config: Config | Snapshot) -> None:
    stamp_path(config.state_dir).unlink(missing_ok=True)


def nothing_changed_line(scanned: int, elapsed: float) -> str:
    return f"build: nothing changed ({scanned} posts scanned) in {elapsed:.2f}s"


class Look(NamedTuple):
    """What a look at the stamp saw: the stamp, a fresh scan, and whether nothing has changed.

    A named tuple, not a dataclass: ``dataclasses`` costs a build with nothing changed ~5 ms to import.
    """

    stamp: dict[str, Any]
    stats: list[FileStat]
    inputs: str  # the fingerprint of the inputs as scanned
    fresh: bool


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
