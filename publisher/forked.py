"""Work done in a forked child process while the parent does other work: a first build reads and parses
ten thousand posts, and a second core halves that.

The child computes one function of what it inherited and sends back its result, which must be a value
:mod:`marshal` writes (None, bools, numbers, text, bytes, and lists, tuples and dicts of them).  Anything
wrong in the child (an exception, a signal, a broken pipe) only makes :meth:`Helper.result` return None,
and the caller does that part itself: a helper can make a build faster, never different.

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
from collections.abc import Callable
from typing import Any


def worth_forking() -> bool:
    """True when a helper process can run beside this one (see the module's docstring)."""
    if not hasattr(os, "fork") or threading.active_count() != 1:
        return False
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return cpus >= 2


class Helper:
    """``work()`` computed in a forked child; the parent collects it with :meth:`result`.

    Use as a context manager: leaving the block early kills the child and reaps it.
    """

    def __init__(self, work: Callable[[], Any]) -> None:
        self._pipe: int | None = None  # None: no child to hear from (not started, or done with)
        try:
            read_end, write_end = os.pipe()
        except OSError:
            return  # no helper: result() says None, and the caller does the work
        gc.freeze()  # until the child ends, collections here skip what it shares (they would make copies of it)
        try:
            self.pid = os.fork()
        except OSError:
            gc.unfreeze()
            os.close(read_end)
            os.close(write_end)
            return
        if self.pid == 0:  # the child: never returns
            os.close(read_end)
            _child(work, write_end)
        os.close(write_end)
        self._pipe = read_end

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
        if self._pipe is None:
            return True
        import select

        return bool(select.select([self._pipe], [], [], 0)[0])

    def result(self) -> Any | None:
        """The child's result; None when it failed or never started (the caller then does the work itself)."""
        if self._pipe is None:
            return None
        chunks = []
        while chunk := os.read(self._pipe, 1 << 20):
            chunks.append(chunk)
        status = self._finish()
        if status != 0 or not chunks:
            return None
        try:
            return marshal.loads(b"".join(chunks))
        except (EOFError, ValueError, TypeError):
            return None

    def _finish(self) -> int:
        os.close(self._pipe)
        self._pipe = None
        status = os.waitpid(self.pid, 0)[1]
        gc.unfreeze()
        return os.waitstatus_to_exitcode(status)


def _child(work: Callable[[], Any], pipe: int) -> None:
    gc.disable()  # a helper does one piece of work; a collection would also copy every page it shares
    status = 1
    try:
        _write_all(pipe, marshal.dumps(work(), 2))  # version 2: no back-references, twice as fast
        status = 0
    finally:  # whatever happened, this process ends here and runs none of the parent's code
        os._exit(status)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
