"""The build stamp: a record of what the last good build saw, so that a rebuild
with nothing changed is known as such from a directory scan alone.

The stamp holds a fingerprint of the inputs (config file, templates, the path,
mtime and size of every post file), the size and mtime of every output file,
and when the next future-dated post comes due.  If all still hold, the build
has nothing to do and opens neither the database nor a post.  The stamp is a
cache: deleting it only costs one full (still incremental) build.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime
from pathlib import Path

from publisher import __version__
from publisher.config import Config
from publisher.resources import template_dir
from publisher.scan import FileStat

STAMP_NAME = "build-stamp.json"


def stamp_path(config: Config) -> Path:
    return config.state_dir / STAMP_NAME


def inputs_fingerprint(config: Config, stats: list[FileStat]) -> str:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{__version__}\0{config.database_url}\0{config.posts_root}\0".encode())
    digest.update(config.path.read_bytes())
    for folder in [*config.template_dirs, template_dir()]:
        for name, mtime_ns, size in _listing(folder):
            digest.update(f"T{name}\0{mtime_ns}\0{size}\n".encode())
    digest.update("".join(f"{s.path}\0{s.mtime_ns}\0{s.size}\n" for s in stats).encode())
    return digest.hexdigest()


def _listing(folder: Path) -> list[tuple[str, int, int]]:
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError:
        return []
    return [(e.name, e.stat().st_mtime_ns, e.stat().st_size) for e in entries if e.is_file()]


def _outputs(paths: list[Path]) -> dict[str, list[int]]:
    found = {}
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            continue
        found[str(path)] = [stat.st_mtime_ns, stat.st_size]
    return found


def is_fresh(config: Config, fingerprint: str, now: datetime) -> bool:
    """True when the last build saw exactly these inputs, its outputs are untouched and nothing has come due."""
    try:
        stamp = json.loads(stamp_path(config).read_text())
        if stamp["inputs"] != fingerprint:
            return False
        if stamp["next_due"] is not None and now >= datetime.fromisoformat(stamp["next_due"]):
            return False
        return _outputs([Path(p) for p in stamp["outputs"]]) == stamp["outputs"]
    except (OSError, ValueError, KeyError, TypeError):
        return False


def save(config: Config, fingerprint: str, outputs: list[Path], next_due: datetime | None) -> None:
    from publisher.output import write_atomic

    stamp = {"inputs": fingerprint, "outputs": _outputs(outputs),
             "next_due": next_due.isoformat() if next_due else None}
    write_atomic(stamp_path(config), json.dumps(stamp, sort_keys=True).encode())


def forget(config: Config) -> None:
    stamp_path(config).unlink(missing_ok=True)
