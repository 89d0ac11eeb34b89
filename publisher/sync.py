"""Bringing the state database in line with the posts folder.

Only files whose size or mtime moved are read; only files whose content hash
moved are parsed.  A file that disappears while another with the same content
(or the same written ``created_at``) appears is a rename: the stored post keeps
its row, and so its entry ID and first-published time.

Many files to read (a first build reads them all) are shared with a forked
helper process (:mod:`publisher.forked`): it reads the last part of the list
and sends back the rows and warnings, which join the first part's in order, so
that the result is the one reading them all here gives.  Into an empty database
(a first build) the helper sends its rows in chunks, and each is inserted as it
comes, while the helper reads on: when it is done, one chunk is left to insert.
A first build from the console script has that part read ahead, while the
config is validated (:class:`ReadAhead`): that helper also scans the posts
folder for the build and then renders the newest posts.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, ContextManager, Protocol

from publisher import forked
from publisher.stamp import blake2b, files_among  # blake2b: hashlib's, without loading OpenSSL
from publisher.errors import PostError
from publisher.posts import Post, read_post
from publisher.scan import FileStat

if TYPE_CHECKING:
    from publisher.state import IndexRow, Store

log = logging.getLogger(__name__)

#: From this many files to read, a forked helper reads a part of them (when :func:`forked.worth_forking`).
PARALLEL_FROM = 1000
#: From this many changed paths, the sync reads every stored post's index row rather than those paths' rows.
DELTA_MAX = 500
#: The share of the files a helper forked by the sync reads: less than half, as it also packs its rows.
HELPER_SHARE = 0.43
#: The share a :class:`ReadAhead` reads: more, as it starts while the parent validates the config.
AHEAD_SHARE = 0.63
#: A first build's helper sends its rows in chunks of this many files, and the build inserts each as it comes,
#: so that only the last chunk's are left to insert when the helper is done.
CHUNK = 500

Warn = Callable[..., object]  # log.warning, or what collects a helper's warnings


class Publish(Protocol):
    """Sets the entry IDs of new rows about to be inserted (see :func:`sync`)."""

    def __call__(self, rows: list[dict[str, Any]], *, last: bool) -> object: ...


class Progress(Protocol):
    def update(self, n: int) -> None: ...


ProgressFactory = Callable[[int, str], ContextManager[Progress]]


class _NoProgress:
    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int) -> None:
        return None


def no_progress(total: int, label: str) -> ContextManager[Progress]:
    return _NoProgress()


@dataclass
class SyncResult:
    scanned: int = 0
    parsed: int = 0
    new: int = 0
    changed: int = 0
    deleted: int = 0
    renamed: int = 0
    unread: int = 0  # files seen by the scan that could not be read (gone, permissions): retried next build
    errors: list[str] = field(default_factory=list)

    @property
    def touched_posts(self) -> bool:
        return bool(self.new or self.changed or self.deleted or self.renamed)


@dataclass
class _Plan:
    inserts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)


def read_file(path: str, size: int) -> bytes:
    """The bytes of the file at ``path``, expected to be ``size`` long (it may have changed since).

    ``os.open``/``os.read``: a third of the cost of ``Path.read_bytes`` for ten thousand small files.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, size + 1)
        if len(data) <= size:  # a regular file reads short only at its end
            return data
        chunks = [data]
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def content_hash(data: bytes) -> str:
    return blake2b(data, digest_size=16).hexdigest()


_UTC = timezone.utc
_META_JSON = json.JSONEncoder(sort_keys=True, default=str)  # json.dumps(meta, sort_keys=True, default=str), made once


def post_columns(post: Post) -> dict[str, Any]:
    """The post's metadata as stored; its times in UTC, as the database keeps them (the same instants).

    Neither the body nor the attribute block as written is stored: both are read again from the file when the
    post is rendered, and what a build reads of them is here (a column each, or in ``meta``).  A first build
    stores ten thousand of these, and the attributes were most of each row.
    """
    meta = {"format": post.body_format, "erb": post.erb, "tags": list(post.tags), "dated_by_mtime": post.dated_by_mtime}
    created, updated = post.created_at, post.updated_at
    local, utc = created.isoformat(), created.astimezone(_UTC)
    return {
        "error": None, "name": post.name, "title": post.title, "kind": post.kind, "author": post.author,
        "draft": post.draft, "created_at": utc, "updated_at": utc if updated is created else updated.astimezone(_UTC),
        "created_key": _created_key(post, local), "created_local": local, "meta": _META_JSON.encode(meta),
    }


def _created_key(post: Post, written: str | None = None) -> str | None:
    """The written creation time, precise enough to recognise the post after a rename (else None).

    ``written``: ``post.created_at.isoformat()``, when the caller has it already.
    """
    stamp = post.created_at
    if post.dated_by_mtime or (stamp.second == 0 and stamp.microsecond == 0):
        return None
    return stamp.isoformat() if written is None else written


def _error_columns(error: PostError) -> dict[str, Any]:
    return {"error": error.reason, "name": None, "title": None, "kind": None, "author": None, "draft": False,
            "created_at": None, "updated_at": None, "created_key": None, "created_local": None, "meta": None}


def sync(store: Store, root: Path, stats: list[FileStat], *, tz: tzinfo, now: datetime,
         progress: ProgressFactory = no_progress, publish: Publish | None = None,
         ahead: ReadAhead | None = None, changed: set[str] | None = None,
         committing: Callable[[], object] | None = None) -> SyncResult:
    """Read and parse what changed, record it, mark what vanished; one transaction.

    ``publish``: called with the rows about to be inserted when the database holds no post at all (a first
    build), part by part in order (``last`` for the last part), to set their entry IDs in the same insert.
    ``ahead``: the last part of a first build's posts, read ahead (used only if it read what this sync would
    read; the caller closes it).  ``changed``: when known, the only paths (new, changed or gone) that can
    differ from what the database holds (:func:`publisher.stamp.changed_since`): only their rows and the
    deleted posts' are read from the database, instead of every row.  ``committing``: called as a first
    build's rows are all in, just before their commit (which waits for the disk: work for another thread).
    """
    result = SyncResult(scanned=len(stats))
    partial = changed is not None and len(changed) <= DELTA_MAX
    index = store.index(changed) if partial else store.index()
    if not index and not partial:
        _first_sync(store, root, stats, tz, result, progress, publish, ahead, committing)
        return result
    if partial:
        stats = files_among(stats, changed)
    plan = _Plan()
    fresh = _read_changed(root, stats, index, tz, result, plan, progress)
    _match_renames_and_deletions(index, {stat.path for stat in stats}, fresh, plan, result, now)
    with store.begin() as conn:
        store.insert_posts(conn, plan.inserts)
        store.update_posts(conn, plan.updates)
    return result


def _first_sync(store: Store, root: Path, stats: list[FileStat], tz: tzinfo, result: SyncResult,
                progress: ProgressFactory, publish: Publish | None, ahead: ReadAhead | None,
                committing: Callable[[], object] | None) -> None:
    """Into a database with no post at all, where every file is new: the rows go in in file order, part by
    part, this process's part while a helper (if any) still reads the last part."""
    prefix = os.path.join(str(root), "")  # str(root / path), without making ten thousand Paths
    with progress(len(stats), "Reading posts") as bar, store.begin() as conn:
        for rows, last in _first_parts(root, prefix, stats, tz, result, bar.update, ahead):
            for row in rows:
                row["deleted_at"] = None  # the row is this sync's own: no copy (a first build has ten thousand)
            result.new += len(rows)
            if publish is not None and (rows or last):
                publish(rows, last=last)
            store.insert_posts(conn, rows)
        if committing is not None:
            committing()


def _first_parts(root: Path, prefix: str, todo: list[FileStat], tz: tzinfo, result: SyncResult,
                 done: Callable[[int], object], ahead: ReadAhead | None) -> Iterator[tuple[list[dict[str, Any]], bool]]:
    """The new rows of ``todo`` (every file: the database holds no post), in order, as (rows, last) parts."""
    return _parts(root, prefix, todo, {}.get, tz, result, _Plan(), done, ahead)


def _parts(root: Path, prefix: str, todo: list[FileStat], get: Callable[[str], IndexRow | None], tz: tzinfo,
           result: SyncResult, plan: _Plan, done: Callable[[int], object],
           ahead: ReadAhead | None = None) -> Iterator[tuple[list[dict[str, Any]], bool]]:
    """The rows of ``todo`` for paths the database has never seen, in order, as (rows, last) parts (the
    others' updates go to ``plan``): this process's part, then a helper's part chunk by chunk as the helper
    sends them (see :data:`CHUNK`); the rest of a helper's part that did not come is read here."""
    helper = None
    many = len(todo) >= PARALLEL_FROM
    if many and ahead is not None:
        split = len(todo) - int(len(todo) * AHEAD_SHARE)
        chunks = ahead.chunks(root, tz, todo[split:])
    elif many and forked.worth_forking():
        split = len(todo) - int(len(todo) * HELPER_SHARE)
        helper = forked.Helper(lambda: _helper_chunks(prefix, todo[split:], tz, get=get))
        chunks = _chunks_of(helper, len(todo) - split)
    else:
        split, chunks = len(todo), iter(())
    try:
        own: list[dict[str, Any]] = []
        _read_part(prefix, todo[:split], get, tz, result, plan, own, log.warning, done)
        yield own, split == len(todo)
        start = split
        for packed in chunks:
            if packed is None:
                break
            rows: list[dict[str, Any]] = []
            _merge(packed, result, plan, rows)
            end = min(start + CHUNK, len(todo))
            done(end - start)
            start = end
            yield rows, start == len(todo)
        if start < len(todo):
            log.debug("no usable part from a helper process; reading it here")
            rest: list[dict[str, Any]] = []
            _read_part(prefix, todo[start:], get, tz, result, plan, rest, log.warning, done)
            yield rest, True
    finally:
        if helper is not None:
            helper.stop()


def _chunks_of(helper: forked.Helper, files: int) -> Iterator[tuple | None]:
    """The messages of a helper running :func:`_helper_chunks` over ``files`` files (None: the helper failed)."""
    for _ in range(0, files, CHUNK):
        packed = helper.receive()
        yield packed
        if packed is None:
            return


def _changed(row: IndexRow | None, stat: FileStat) -> bool:
    return row is None or row.deleted or row.mtime_ns != stat.mtime_ns or row.size != stat.size


def _read_changed(root: Path, stats: list[FileStat], index: dict[str, IndexRow], tz: tzinfo, result: SyncResult,
                  plan: _Plan, progress: ProgressFactory) -> list[dict[str, Any]]:
    """Parse every changed file; return the rows for paths the database has never seen."""
    get = index.get
    todo = [stat for stat in stats if _changed(get(stat.path), stat)]
    prefix = os.path.join(str(root), "")  # str(root / path), without making ten thousand Paths
    with progress(len(todo), "Reading posts") as bar:
        return [row for rows, _last in _parts(root, prefix, todo, get, tz, result, plan, bar.update) for row in rows]


def _read_part(prefix: str, todo: list[FileStat], get: Callable[[str], IndexRow | None], tz: tzinfo,
               result: SyncResult, plan: _Plan, fresh: list[dict[str, Any]], warn: Warn,
               done: Callable[[int], object]) -> None:
    for stat in todo:
        _read_one(prefix + stat.path, stat, get(stat.path), tz, result, plan, fresh, warn)
        done(1)


def _read_one(source: str, stat: FileStat, row: IndexRow | None, tz: tzinfo, result: SyncResult, plan: _Plan,
              fresh: list[dict[str, Any]], warn: Warn) -> None:
    try:
        data = read_file(source, stat.size)
    except OSError as exc:
        warn("%s: can't read the file (%s); it will be retried", source, exc.strerror)
        result.unread += 1
        return
    digest = content_hash(data)
    base = {"path": stat.path, "mtime_ns": stat.mtime_ns, "size": stat.size, "content_hash": digest}
    if row is not None and not row.deleted and row.content_hash == digest:
        plan.updates.append({"id": row.id, **base})  # touched, not changed: nothing to parse
        return
    result.parsed += 1
    columns = _parse(stat, data, tz, source, result, warn)
    if row is None:
        fresh.append({**base, **columns})
        return
    result.changed += 1
    plan.updates.append({"id": row.id, **base, **columns, "deleted_at": None})


# -- the helper's part: read in the forked child, its rows sent back pickled -------------------

class Service(Protocol):
    """What a :class:`ReadAhead` helper does once it has read its part: answers the build's requests."""

    def warm_up(self) -> None: ...

    def __call__(self, request: Any, rows: list[dict[str, Any]]) -> Any:
        """The answer to ``request``; ``rows``: the new rows of the helper's part."""


class ReadAhead:
    """A first build's posts folder, scanned, and the last :data:`AHEAD_SHARE` of its posts, read by a helper
    started before the config is validated, with a guess of the posts folder and time zone from the raw config
    (see :mod:`publisher.quickbuild`).  The build takes the scan if it is of the same folders, and the sync
    takes the part only if it is exactly the part it would give a helper: the same folder, time zone and files
    (path, mtime, size), into an empty database.  With a ``service``, the helper then answers what the build
    asks for (it renders the newest posts: :mod:`publisher.prerender`)."""

    def __init__(self, root: Path, folders: list[str], tz: tzinfo, service: Service | None = None) -> None:
        self.root, self.folders, self.tz = str(root), list(folders), tz
        self.serves = service is not None
        self._helper = forked.Helper(lambda: _read_ahead(root, folders, tz, service), inbox=self.serves)
        self._received = 0  # the helper's messages taken: its scan, its part, then one answer per request

    def scanned(self, root: Path, folders: list[str]) -> list[FileStat] | None:
        """The helper's scan, if it scanned these ``folders`` of ``root`` (and can be asked only first)."""
        if str(root) != self.root or list(folders) != self.folders or self._received:
            return None
        found = self._receive()
        return None if found is None else list(map(FileStat._make, found))

    def chunks(self, root: Path, tz: tzinfo, part: list[FileStat]) -> Iterator[tuple | None]:
        """What :func:`_helper_part` gives for each :data:`CHUNK` of ``part`` in turn, as the helper sends them;
        None (and no more) from the first the helper did not read as the build would: it read another folder,
        time zone or part, or it failed.  The caller reads the rest itself.  The part is checked now (the helper
        sends it before reading it), and the helper can be asked from then on."""
        found = None
        while self._received < 2:
            found = self._receive()  # its scan, unless taken, then its part
        if found is None or str(root) != self.root or str(tz) != str(self.tz) or found != list(map(tuple, part)):
            self.serves = False  # its chunks are not taken, and would come before any answer
            return iter([None])
        return _chunks_of(self._helper, len(part))

    def ask(self, request: Any) -> bool:
        """Send the helper's service ``request`` (once :meth:`chunks` checked its part: the answer comes after
        the last chunk); False when it can't take one."""
        return self.serves and self._received >= 2 and self._helper.send(request)

    def answer(self) -> Any | None:
        """The answer to the last request (None when the helper failed)."""
        return self._receive()

    def _receive(self) -> Any | None:
        self._received += 1
        return self._helper.receive()

    def close(self) -> None:
        self._helper.stop()


def _read_ahead(root: Path, folders: list[str], tz: tzinfo, service: Service | None) -> Iterator[Any]:
    """In the helper: the scan of the posts folder, then the part of a first build it reads, then what it finds
    there chunk by chunk, then the answers of ``service`` to the requests from the build."""
    from publisher.scan import scan_posts

    stats = scan_posts(root, folders)
    yield list(map(tuple, stats))
    part = stats[len(stats) - int(len(stats) * AHEAD_SHARE):] if len(stats) >= PARALLEL_FROM else []
    yield list(map(tuple, part))
    if service is not None:
        service.warm_up()  # now: the build takes the first chunk only once it has read its own part
    rows: list[dict[str, Any]] = []
    yield from _helper_chunks(os.path.join(str(root), ""), part, tz, rows if service is not None else None)
    for request in forked.requests() if service is not None else ():
        yield service(request, rows)


def _helper_chunks(prefix: str, todo: list[FileStat], tz: tzinfo, keep: list[dict[str, Any]] | None = None,
                   get: Callable[[str], IndexRow | None] = {}.get) -> Iterator[tuple]:
    """In a helper: what :func:`_helper_part` gives for each :data:`CHUNK` of ``todo`` (``get``: their stored
    rows, none by default), one message each (``keep``: gets the new rows too)."""
    for start in range(0, len(todo), CHUNK):
        yield _helper_part(prefix, todo[start:start + CHUNK], get, tz, keep)


def _helper_part(prefix: str, todo: list[FileStat], get: Callable[[str], IndexRow | None], tz: tzinfo,
                 keep: list[dict[str, Any]] | None = None) -> tuple:
    """What :func:`_read_part` finds in ``todo``, as marshal writes it (runs in the helper process; ``keep``:
    gets the new rows too)."""
    result, plan, fresh, warnings = SyncResult(), _Plan(), [], []
    _read_part(prefix, todo, get, tz, result, plan, fresh, lambda *args: warnings.append(args), lambda n: None)
    if keep is not None:
        keep.extend(fresh)
    counts = (result.parsed, result.changed, result.unread)
    return counts, result.errors, warnings, _rows_bytes(plan.updates), _rows_bytes(fresh)


def _merge(packed: tuple, result: SyncResult, plan: _Plan, fresh: list[dict[str, Any]]) -> None:
    """Add the helper's part after this process's own (the order reading them all here gives)."""
    (parsed, changed, unread), errors, warnings, updates, new_rows = packed
    result.parsed += parsed
    result.changed += changed
    result.unread += unread
    result.errors.extend(errors)
    for args in warnings:
        log.warning(*args)
    plan.updates.extend(_rows(updates))
    fresh.extend(_rows(new_rows))


def _rows_bytes(rows: list[dict[str, Any]]) -> bytes:
    """Rows as the helper sends them: pickled (their datetimes too, which marshal does not write), inside a
    message that marshal writes.  Only ever read by the process that forked the helper (:func:`_rows`)."""
    import pickle

    return pickle.dumps(rows, pickle.HIGHEST_PROTOCOL)


def _rows(data: bytes) -> list[dict[str, Any]]:
    import pickle

    return pickle.loads(data)  # noqa: S301 - bytes from this process's own forked helper


def _parse(stat: FileStat, data: bytes, tz: tzinfo, source: str, result: SyncResult, warn: Warn) -> dict[str, Any]:
    try:
        post = read_post(stat.path, data, stat.mtime_ns / 1e9, tz=tz, source=source)
    except PostError as error:
        warn("%s", str(error))
        result.errors.append(str(error))
        return _error_columns(error)
    return post_columns(post)


def _match_renames_and_deletions(index: dict[str, IndexRow], present: set[str], fresh: list[dict[str, Any]],
                                 plan: _Plan, result: SyncResult, now: datetime) -> None:
    vanished = [row for path, row in index.items() if path not in present and not row.deleted]
    tombstones = [row for row in index.values() if row.deleted and row.path not in present]
    candidates = vanished + tombstones
    for new_row in fresh:
        old = _find_previous(new_row, candidates) if candidates else None
        if old is None:
            result.new += 1
            new_row["deleted_at"] = None  # the row is this sync's own: no copy (a first build has ten thousand)
            plan.inserts.append(new_row)
            continue
        candidates.remove(old)
        result.renamed += 1
        log.info("%s: renamed to %s; it keeps its entry ID", old.path, new_row["path"])
        plan.updates.append({"id": old.id, **new_row, "deleted_at": None})
    for row in vanished:
        if row in candidates:
            result.deleted += 1
            plan.updates.append({"id": row.id, "deleted_at": now})


def _find_previous(new_row: dict[str, Any], candidates: Iterable[IndexRow]) -> IndexRow | None:
    candidates = list(candidates)
    for row in candidates:
        if row.content_hash == new_row["content_hash"]:
            return row
    key = new_row.get("created_key")
    if key is None:
        return None
    return next((row for row in candidates if row.created_key == key), None)
