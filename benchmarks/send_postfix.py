"""Postfix's test tools without an MTA: ``smtp-sink`` (throws mail away) and ``smtp-source`` (sends it).

Both come from Debian's ``postfix`` package, fetched with ``apt-get download
postfix`` and unpacked with ``dpkg -x`` under ``benchmarks/work/postfix/``;
nothing is installed and no MTA ever runs.  The binaries need Postfix's own
shared libraries, which are in the unpacked ``usr/lib/postfix`` (hence
``LD_LIBRARY_PATH``).  As root smtp-sink refuses to start without ``-u USER``
(it drops to that user after binding); as any other user ``-u`` must be left
out (it fails with "initgroups: Operation not permitted").
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


class PostfixError(RuntimeError):
    """The Postfix tools can't be fetched, unpacked or started."""


@dataclass(frozen=True)
class Tools:
    root: Path  # the unpacked package

    @property
    def sink(self) -> Path:
        return self.root / "usr" / "sbin" / "smtp-sink"

    @property
    def source(self) -> Path:
        return self.root / "usr" / "sbin" / "smtp-source"

    @property
    def env(self) -> dict[str, str]:
        libs = str(self.root / "usr" / "lib" / "postfix")
        old = os.environ.get("LD_LIBRARY_PATH")
        return {**os.environ, "LD_LIBRARY_PATH": f"{libs}:{old}" if old else libs}

    def version(self) -> str:
        debs = sorted(self.root.parent.glob("postfix_*.deb"))
        return debs[-1].stem.split("_")[1] if debs else "unknown"


def ensure_tools(work: Path) -> Tools:
    """The unpacked Postfix tools under ``work/postfix``, downloading and unpacking the package when missing."""
    folder = work.resolve() / "postfix"
    tools = Tools(folder / "root")
    if tools.sink.exists() and tools.source.exists():
        return tools
    folder.mkdir(parents=True, exist_ok=True)
    deb = _download(folder)
    staging = folder / "root.partial"
    shutil.rmtree(staging, ignore_errors=True)
    _run(["dpkg", "-x", str(deb), str(staging)], folder)
    shutil.rmtree(tools.root, ignore_errors=True)
    staging.rename(tools.root)
    return tools


def _download(folder: Path) -> Path:
    debs = sorted(folder.glob("postfix_*.deb"))
    if debs:
        return debs[-1]
    print("postfix tools not found: running apt-get download postfix", flush=True)
    if _run(["apt-get", "download", "postfix"], folder, check=False) != 0:
        _run(["apt-get", "update"], folder, check=False)
        _run(["apt-get", "download", "postfix"], folder)
    debs = sorted(folder.glob("postfix_*.deb"))
    if not debs:
        raise PostfixError("apt-get download postfix wrote no .deb; fetch it by hand into " + str(folder))
    return debs[-1]


def _run(argv: list[str], cwd: Path, check: bool = True) -> int:
    try:
        status = subprocess.run(argv, cwd=cwd, check=False, stdin=subprocess.DEVNULL).returncode
    except OSError as exc:
        raise PostfixError(f"can't run {argv[0]}: {exc}; this needs Debian's apt-get and dpkg") from exc
    if check and status != 0:
        raise PostfixError(f"`{' '.join(argv)}` exited with status {status}")
    return status


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- the sink -----------------------------------------------------------------------------------

COUNTERS = re.compile(r"sess=(\d+) quit=(\d+) mesg=(\d+)")


@dataclass(frozen=True)
class SinkCounts:
    sessions: int
    quits: int
    messages: int


def parse_sink_counters(output: str) -> SinkCounts:
    """The last of the running counters ``smtp-sink -c`` writes (``sess=4 quit=4 mesg=1000``, ``\\r``-separated)."""
    found = COUNTERS.findall(output)
    if not found:
        return SinkCounts(0, 0, 0)
    sessions, quits, messages = (int(value) for value in found[-1])
    return SinkCounts(sessions, quits, messages)


def sink_command(tools: Tools, port: int, *, backlog: int = 4096, as_root: bool | None = None) -> list[str]:
    """``smtp-sink -c [-u nobody] -m 1024 127.0.0.1:PORT BACKLOG``: counts, throws everything away."""
    root = os.geteuid() == 0 if as_root is None else as_root
    return [str(tools.sink), "-c", *(["-u", "nobody"] if root else []), "-m", "1024",
            f"127.0.0.1:{port}", str(backlog)]


class Sink:
    """A running smtp-sink on 127.0.0.1; its counters tell how many messages arrived."""

    def __init__(self, tools: Tools, port: int | None = None) -> None:
        self.tools = tools
        self.port = port or free_port()
        self.output = tempfile.TemporaryFile()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Sink:
        argv = sink_command(self.tools, self.port)
        self.process = subprocess.Popen(argv, env=self.tools.env, stdout=self.output, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
        _wait_listening(self.port, self.process, self.read)
        return self

    def read(self) -> str:
        self.output.seek(0)
        return self.output.read().decode("utf-8", "replace")

    def counts(self) -> SinkCounts:
        return parse_sink_counters(self.read())

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.output.close()

    def __enter__(self) -> Sink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _wait_listening(port: int, process: subprocess.Popen[bytes], output: object) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise PostfixError(f"smtp-sink exited with status {process.returncode}: {output()[-300:]}")  # type: ignore[operator]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as probe:
                probe.recv(100)  # the greeting; the session is then dropped (counted as one session)
                return
        except OSError:
            time.sleep(0.02)
    raise PostfixError(f"smtp-sink did not listen on 127.0.0.1:{port} within 10 s")


# -- the source ---------------------------------------------------------------------------------

SOURCE_COUNTER = re.compile(r"(\d+)")


@dataclass(frozen=True)
class SourceRun:
    messages: int
    sessions: int
    seconds: float  # wall clock around the smtp-source process
    counted: int  # the last value of smtp-source's own -c counter (messages whose DATA completed)

    @property
    def rate(self) -> float:
        return self.counted / self.seconds if self.seconds > 0 else 0.0


def parse_source_counter(output: str) -> int:
    """The last number of ``smtp-source -c``'s running counter (``\\r``-separated, maybe a final newline)."""
    numbers = [int(value) for value in SOURCE_COUNTER.findall(output.replace("\r", "\n"))]
    return numbers[-1] if numbers else 0


def source_command(tools: Tools, port: int, *, messages: int, sessions: int, message_file: Path | None,
                   size: int) -> list[str]:
    """smtp-source with one connection per session reused for every message (``-d``), ``-m`` messages in all.

    With ``message_file`` the very bytes of one of our messages are sent (``-F``: LF lines, sent as CRLF),
    else ``size`` bytes of payload (``-l``) under smtp-source's own four headers.
    """
    body = ["-F", str(message_file)] if message_file else ["-l", str(size)]
    return [str(tools.source), "-c", "-d", "-s", str(sessions), "-m", str(messages), "-M", "localhost",
            "-f", "bench@example.org", "-t", "reader@example.org", *body, f"127.0.0.1:{port}"]


def run_source(tools: Tools, port: int, *, messages: int, sessions: int, message_file: Path | None = None,
               size: int = 50_000) -> SourceRun:
    argv = source_command(tools, port, messages=messages, sessions=sessions, message_file=message_file, size=size)
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        status = subprocess.run(argv, env=tools.env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, check=False).returncode
        seconds = time.perf_counter() - started
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    if status != 0:
        raise PostfixError(f"smtp-source exited with status {status}: {text.strip()[-300:]}")
    return SourceRun(messages, sessions, seconds, parse_source_counter(text))


def write_message_file(message: bytes, path: Path) -> Path:
    """One encoded message (CRLF) as the LF-lines file ``smtp-source -F`` wants (it dot-stuffs and adds CRLF)."""
    path.write_bytes(message.replace(b"\r\n", b"\n"))
    return path
