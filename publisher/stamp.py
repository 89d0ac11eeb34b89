"""The build stamp: a record of what the last good build saw, so that a rebuild
with nothing changed is known as such from a directory scan alone.

The stamp holds a hash of the config file, a fingerprint of the inputs
(templates, the path, mtime and size of every post file), the size and mtime of
every output file, and when the next future-dated post comes due.  If all still
hold, the build has nothing to do and opens neither the database nor a post.

This module is on the fast path of ``publisher build``: it imports nothing
heavy (no pydantic, no SQLAlchemy), so that ``publisher build`` with nothing
changed costs little more than the scan.  The stamp is a cache: deleting it
only costs one full (still incremental) build.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from publisher import __version__
from publisher.resources import template_dir
from publisher.scan import FileStat, scan_posts

if TYPE_CHECKING:
    from publisher.config import Config

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
    digest.update("".join(f"{s.path}\0{s.mtime_ns}\0{s.size}\n" for s in stats).encode())
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


def _config_inputs(config: Config) -> dict[str, Any]:
    return {"config_hash": _digest(config.path.read_bytes()), "posts_root": str(config.posts_root),
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


def is_fresh(config: Config, stats: list[FileStat], now: datetime) -> bool:
    """True when the last build saw exactly these inputs, its outputs are untouched and nothing has come due."""
    stamp = _load(stamp_path(config.state_dir))
    try:
        return (stamp is not None and stamp["config"] == _config_inputs(config)
                and _holds(stamp, fingerprint(stats, stamp["config"]["template_dirs"], config.database_url), now))
    except (KeyError, TypeError, ValueError):
        return False


def save(config: Config, stats: list[FileStat], outputs: list[Path], next_due: datetime | None) -> None:
    from publisher.output import write_atomic

    inputs = _config_inputs(config)
    stamp = {"config": inputs, "inputs": fingerprint(stats, inputs["template_dirs"], config.database_url),
             "outputs": _outputs([str(p) for p in outputs]), "next_due": next_due.isoformat() if next_due else None}
    write_atomic(stamp_path(config.state_dir), json.dumps(stamp, sort_keys=True).encode())


def forget(config: Config) -> None:
    stamp_path(config.state_dir).unlink(missing_ok=True)


def nothing_changed_line(scanned: int, elapsed: float) -> str:
    return f"build: nothing changed ({scanned} posts scanned) in {elapsed:.2f}s"


def quick_check(config_path: Path, now: datetime) -> int | None:
    """The fast path of ``publisher build``: the number of posts scanned if nothing changed, else None.

    Reads the raw config only to find the state folder; any doubt (an unusual
    config, no stamp, a changed input) answers None and the full build runs.
    """
    try:
        raw = config_path.read_bytes()
        state = tomllib.loads(raw.decode()).get("state", {}).get("directory", "state")
        stamp = _load(stamp_path(config_path.absolute().parent / state))
        if stamp is None or stamp["config"]["config_hash"] != _digest(raw):
            return None
        inputs = stamp["config"]
        stats = scan_posts(Path(inputs["posts_root"]), inputs["folders"])
        if _holds(stamp, fingerprint(stats, inputs["template_dirs"], inputs["database_url"]), now):
            return len(stats)
    except Exception:  # noqa: BLE001 - the fast path never fails a build: the full build will report
        return None
    return None
