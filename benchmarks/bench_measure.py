"""Running one command as a fresh process: its wall time and its own peak RSS."""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


class CommandFailed(RuntimeError):
    """A measured command exited with a non-zero status."""


@dataclass(frozen=True)
class Run:
    argv: tuple[str, ...]
    seconds: float  # wall time, from just before the fork to the reaping of the process
    max_rss_kib: int  # ru_maxrss from wait4: the peak resident set of that process (KiB on Linux)
    status: int
    stdout: str
    stderr: str

    @property
    def max_rss_mib(self) -> float:
        return self.max_rss_kib / 1024


def run_measured(argv: list[str], *, cwd: Path | None = None) -> Run:
    """Run ``argv`` to completion; output goes to temporary files so no pipe can fill up."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=cwd)
        _, wait_status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(wait_status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        return Run(tuple(argv), seconds, usage.ru_maxrss, process.returncode,
                   out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace"))


def checked(run: Run) -> Run:
    """The run, or CommandFailed naming the command and the end of its error output."""
    if run.status != 0:
        tail = "\n".join((run.stderr or run.stdout).strip().splitlines()[-8:])
        raise CommandFailed(f"`{' '.join(run.argv)}` exited with status {run.status}:\n{tail}")
    return run


def median_seconds(runs: list[Run]) -> float:
    return statistics.median(run.seconds for run in runs)


def peak_mib(runs: list[Run]) -> float:
    return max(run.max_rss_mib for run in runs)
