"""Run a command and report ITS OWN peak RSS, however big the process that wants to know is.

``ru_maxrss`` survives ``execve``: Linux keeps the larger of the old and the
new memory's high-water mark, and Python starts children with ``vfork``, so a
child of a 200 MiB benchmark process reports at least 200 MiB whatever it does
itself.  Started from this small launcher instead (a fresh interpreter that
imports almost nothing), the measured command inherits only the launcher's few
MiB.  Usage: ``python send_rss.py TIMEOUT_SECONDS ARGV...``; the command's
output is passed through, then one last line ``RSS <kib> <status> <seconds>``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time


def measure(argv: list[str], timeout: float) -> tuple[int, int, float]:
    """(ru_maxrss KiB, exit status, seconds) of ``argv``, killed after ``timeout`` seconds."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    while True:
        pid, wait_status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() - started > timeout:
            process.kill()
            _, wait_status, usage = os.wait4(process.pid, 0)
            break
        time.sleep(0.05)
    process.returncode = os.waitstatus_to_exitcode(wait_status)
    return usage.ru_maxrss, process.returncode, time.perf_counter() - started


def parse_last_line(output: str) -> tuple[int, int, float] | None:
    """The ``RSS kib status seconds`` line at the end of the launcher's output, or None."""
    lines = output.strip().splitlines()
    if not lines or not lines[-1].startswith("RSS "):
        return None
    _, kib, status, seconds = lines[-1].split()
    return int(kib), int(status), float(seconds)


def main(argv: list[str]) -> int:
    timeout, command = float(argv[0]), argv[1:]
    kib, status, seconds = measure(command, timeout)
    sys.stdout.flush()
    print(f"RSS {kib} {status} {seconds:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
