"""Work done in a forked child process while the parent does other work: a first build reads and parses
ten thousand posts, and a second core halves that.

The child computes one function of what it inherited and sends back its result, which must be a value
:mod:`marshal` writes (None, bools, numbers, text, bytes, and lists, tuples and dicts of them).  A function
that is a generator sends each value it yields as soon as it has it (:meth:`Helper.receive`; a thread in
the child writes them, so a full pipe never stops its work), the last one being its result.  A helper
started with an inbox also reads what the parent sends it (:meth:`Helper.send`, :func:`requests`).
Anything wrong in the child (an exception, a signal, a broken pipe) only makes
:meth:`Helper.result` return None, and the caller does that part itself: a helper can make a build faster,
never different.

A helper is forked only where that is safe and useful (:func:`worth_forking`): on a system with ``fork``,
at least two CPUs, and no other thread in the process (a forked child has only the forking thread, and
a lock another thread held stays held there).  While a child lives, the objects it shares with the parent
are out of the garbage collector's reach in both (``gc.freeze`` in the parent, no collection in the
child): a collection touches every object, and so makes each process copy every page it touches.
"""

from __future__ import annotations

import gc
import marshal
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from types import GeneratorType
from typing import Any

_HEADER = 8  # each message: its length (8 bytes, little-endian), then its marshal bytes


def worth_forking() -> bool:
    """True when a helper process can run beside this one (see the module's docstring)."""
    if not hasattr(os, "fork") or threading.active_count() != 1:
        return False
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return cpus >= 2


class Helper:
    """``work()`` computed in a forked child; the parent collects it with :meth:`result`, or message by message
    with :meth:`receive`.  With ``inbox``, the parent can also :meth:`send` the child values, which the child's
    work reads with :func:`requests`.

    Use as a context manager: leaving the block early kills the child and reaps it.
    """

    def __init__(self, work: Callable[[], Any], *, inbox: bool = False) -> None:
        self._pipe: int | None = None  # None: no child to hear from (not started, or done with)
        self._outbox: int | None = None  # the parent's end of the inbox
        self._reader = _Reader()
        try:
            pipes = [os.pipe() for _ in range(2 if inbox else 1)]
        except OSError:
            return  # no helper: result() says None, and the caller does the work
        gc.freeze()  # until the child ends, collections here skip what it shares (they would make copies of it)
        try:
            self.pid = os.fork()
        except OSError:
            gc.unfreeze()
            _close(fd for pipe in pipes for fd in pipe)
            return
        if self.pid == 0:  # the child: never returns
            _close([pipes[0][0], *(pipe[1] for pipe in pipes[1:])])
            _child(work, pipes[0][1], pipes[1][0] if inbox else None)
        _close([pipes[0][1], *(pipe[0] for pipe in pipes[1:])])
        _widen(pipes[0][0])
        self._pipe = pipes[0][0]
        self._outbox = pipes[1][1] if inbox else None

    def __enter__(self) -> Helper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Kill the child and reap it, unless its result was collected."""
        if self._pipe is not None:
            os.kill(self.pid, signal.SIGKILL)
            self._finish()

    def ready(self) -> bool:
        """True once the child has sent something (or ended): :meth:`result` then waits little, if at all."""
        if self._pipe is None or self._reader.buffer:
            return True
        import select

        return bool(select.select([self._pipe], [], [], 0)[0])

    def send(self, value: Any) -> bool:
        """Send ``value`` to the child's :func:`requests`; False when it can't be (no inbox, child gone, a value
        marshal does not write)."""
        if self._outbox is None:
            return False
        try:
            _send(self._outbox, value)
        except (OSError, ValueError):
            return False
        return True

    def receive(self) -> Any | None:
        """The child's next message (the values a generator yields, one per call, in order); None when the child
        failed, never started, or has sent its last message (then reaped)."""
        if self._pipe is None:
            return None
        message = self._reader.next(self._pipe)
        if message is _END:
            self._finish()
            return None
        return message

    def result(self) -> Any | None:
        """The child's result (its last message); None when it failed or never started (the caller then does
        the work itself)."""
        if self._pipe is None:
            return None
        last: Any = _END
        while (message := self._reader.next(self._pipe)) is not _END:
            last = message
        status = self._finish()
        return None if status != 0 or last is _END else last

    def _finish(self) -> int:
        _close([self._pipe] if self._outbox is None else [self._pipe, self._outbox])
        self._pipe = self._outbox = None
        status = os.waitpid(self.pid, 0)[1]
        gc.unfreeze()
        return os.waitstatus_to_exitcode(status)


_END = object()  # no more messages
_inbox: int | None = None  # in a child with an inbox: its end
_inbox_reader: _Reader | None = None


class _Reader:
    """Messages from a pipe: each its length (:data:`_HEADER` bytes, little-endian), then its marshal bytes."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def next(self, fd: int) -> Any:
        """The next message, or _END (end of the pipe, or bytes that are no message)."""
        if not self._fill(fd, _HEADER):
            return _END
        size = int.from_bytes(self.buffer[:_HEADER], "little")
        if not self._fill(fd, _HEADER + size):
            return _END
        data = bytes(self.buffer[_HEADER:_HEADER + size])
        del self.buffer[:_HEADER + size]
        try:
            return marshal.loads(data)
        except (EOFError, ValueError, TypeError):
            return _END

    def _fill(self, fd: int, size: int) -> bool:
        """Read until the buffer holds ``size`` bytes; False at the end of the pipe before that."""
        while len(self.buffer) < size:
            chunk = os.read(fd, max(1 << 20, size - len(self.buffer)))
            if not chunk:
                return False
            self.buffer += chunk
        return True


def requests() -> Iterator[Any]:
    """In a helper started with an inbox: each value the parent sends, until the parent closes the inbox (or
    stops the helper).  Elsewhere: nothing."""
    while _inbox is not None and _inbox_reader is not None:
        message = _inbox_reader.next(_inbox)
        if message is _END:
            return
        yield message


def _child(work: Callable[[], Any], pipe: int, inbox: int | None) -> None:
    global _inbox, _inbox_reader
    gc.disable()  # a helper does one piece of work; a collection would also copy every page it shares
    _inbox, _inbox_reader = inbox, _Reader()
    status = 1
    try:
        found = work()
        if isinstance(found, GeneratorType):
            status = 0 if _send_all(pipe, found) else 1
        else:
            _send(pipe, found)
            status = 0
    finally:  # whatever happened, this process ends here and runs none of the parent's code
        os._exit(status)


def _send(fd: int, message: Any) -> None:
    data = marshal.dumps(message, 2)  # version 2: no back-references, twice as fast
    _write_all(fd, len(data).to_bytes(_HEADER, "little"))
    _write_all(fd, data)


def _send_all(fd: int, messages: Iterator[Any]) -> bool:
    """Send each message as it comes, from a thread: the work goes on while the parent, busy elsewhere, has not
    read what fills the pipe.  True when every message was written."""
    import queue

    waiting: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    written = []

    def write() -> None:
        try:
            while (data := waiting.get()) is not None:
                _write_all(fd, data)
        except OSError:
            return  # the parent is gone or stopped listening: the helper fails (status 1)
        written.append(True)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    try:
        for message in messages:
            data = marshal.dumps(message, 2)
            waiting.put(len(data).to_bytes(_HEADER, "little") + data)
    finally:
        waiting.put(None)
        thread.join()
    return bool(written)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _widen(fd: int) -> None:
    """Let the pipe hold 1 MiB (Linux; best effort): a child then sends a message while the parent is busy."""
    try:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)
    except (ImportError, AttributeError, OSError):
        pass


def _close(fds: Iterable[int]) -> None:
    for fd in fds:
        os.close(fd)
