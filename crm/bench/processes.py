"""The processes a benchmark run starts: the sandbox, measured workers, the Streamlit app.

Every wait here polls a condition against a deadline; nothing sleeps a fixed time.
"""

from __future__ import annotations

import json
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Generic, Protocol, Self, TypeVar

from crm.bench.report import peak_rss_mb
from crm.bench.worker import RESULT_PREFIX
from crm.sandbox.admin import SandboxAdmin
from crm.sandbox.pipedrive.admin import PipedriveAdmin

REPO = Path(__file__).resolve().parents[2]
_URL_RE = re.compile(r"http://127\.0\.0\.1:\d+")


class BenchError(RuntimeError):
    """A benchmark step could not run (a process failed to start or answered with an error)."""


class _Lines:
    """Collects a child's output lines on a thread, so reading never blocks past a deadline."""

    def __init__(self, stream: IO[str], keep: int = 200) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.tail: list[str] = []
        self._keep = keep
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line)
            self.tail.append(line)
            del self.tail[: -self._keep]

    def wait_for(self, pattern: re.Pattern[str], deadline: float) -> str | None:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                line = self.lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            match = pattern.search(line)
            if match:
                return match.group(0)


class _Admin(Protocol):
    def close(self) -> None: ...


AdminT = TypeVar("AdminT", bound=_Admin)


class _ServedProcess(Generic[AdminT]):
    """A sandbox module run as ``python -m ...`` on a free loopback port, with its admin client.

    Ready once it prints its URL. Started empty: the runner seeds it (``reset``) and sets
    latency and limits (``configure``) through the admin API, so seeding is timed on its own.
    Subclasses give the command and open the admin client.
    """

    def __init__(self, *, seed: int = 42, start_timeout: float = 60.0) -> None:
        self.seed = seed
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.admin: AdminT | None = None
        self._out: _Lines | None = None

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _open_admin(self) -> AdminT:
        raise NotImplementedError

    def start(self) -> Self:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", *self._command()],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.proc.stdout is not None
        self._out = _Lines(self.proc.stdout)
        url = self._out.wait_for(_URL_RE, time.monotonic() + self.start_timeout)
        if not url:
            self.stop()
            raise BenchError("the sandbox did not print its URL: " + "".join(self._out.tail[-20:]))
        self.url = url
        self.admin = self._open_admin()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def peak_mb(self) -> float | None:
        return peak_rss_mb(self.pid) if self.proc else None

    def log_tail(self) -> str:
        return "".join(self._out.tail[-30:]) if self._out else ""

    def stop(self) -> None:
        if self.admin:
            self.admin.close()
            self.admin = None
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SandboxProcess(_ServedProcess[SandboxAdmin]):
    """``python -m crm.sandbox`` (HubSpot) with an empty portal."""

    def _command(self) -> list[str]:
        return ["crm.sandbox", "--host", "127.0.0.1", "--port", "0", "--seed", str(self.seed),
                "--contacts", "0", "--companies", "0", "--deals", "0"]  # fmt: skip

    def _open_admin(self) -> SandboxAdmin:
        # Seeding a large portal is one long admin call.
        return SandboxAdmin(self.url, timeout=1800.0)


class PipedriveSandboxProcess(_ServedProcess[PipedriveAdmin]):
    """``python -m crm.sandbox.pipedrive`` with an empty company; the bench keeps its default burst limits."""

    def _command(self) -> list[str]:
        return ["crm.sandbox.pipedrive", "--host", "127.0.0.1", "--port", "0", "--seed", str(self.seed),
                "--persons", "0", "--organizations", "0", "--deals", "0"]  # fmt: skip

    def _open_admin(self) -> PipedriveAdmin:
        return PipedriveAdmin(self.url, timeout=1800.0)


def run_worker(op: str, args: dict[str, Any], *, timeout: float) -> dict[str, Any]:
    """Run one ``crm.bench.worker`` operation in a fresh interpreter and return its result.

    Raises BenchError with the worker's last output lines when it fails or times out.
    """
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "crm.bench.worker", op],
            input=json.dumps(args),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    except subprocess.TimeoutExpired as exc:
        output = exc.stderr or exc.stdout or ""
        text = output.decode(errors="replace") if isinstance(output, bytes) else output
        tail = text.strip().splitlines()[-5:]
        raise BenchError(f"{op} did not finish within {timeout:.0f} s: " + " | ".join(tail)) from None
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            return result
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-8:]
    raise BenchError(f"{op} failed (exit {proc.returncode}): " + " | ".join(tail))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class StreamlitProcess:
    """``streamlit run app.py`` on loopback with the given environment, ready when healthy."""

    def __init__(self, env: dict[str, str], *, start_timeout: float = 120.0) -> None:
        self.env = env
        self.start_timeout = start_timeout
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[str] | None = None
        self._out: _Lines | None = None

    def start(self) -> StreamlitProcess:
        cmd = [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.headless=true",
            f"--server.port={self.port}",
            "--server.address=127.0.0.1",
            "--browser.gatherUsageStats=false",
            "--server.fileWatcherType=none",
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        assert self.proc.stdout is not None
        self._out = _Lines(self.proc.stdout)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError("streamlit exited: " + self.log_tail())
            if _get(self.url + "/_stcore/health") == "ok":
                return self
            # Pace the health polls on the child's output instead of a fixed sleep.
            self._out.wait_for(re.compile(r"."), time.monotonic() + 0.2)
        self.stop()
        raise BenchError("streamlit did not become healthy: " + self.log_tail())

    def peak_mb(self) -> float | None:
        return peak_rss_mb(self.proc.pid) if self.proc else None

    def log_tail(self) -> str:
        return "".join(self._out.tail[-30:]) if self._out else ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)

    def __enter__(self) -> StreamlitProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback only
            body: bytes = response.read()
            return body.decode().strip()
    except (urllib.error.URLError, OSError):
        return None
