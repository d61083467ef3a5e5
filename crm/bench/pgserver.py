"""A private, throwaway PostgreSQL server: for the tests and for the benchmark.

It starts from the binaries of Debian's ``postgresql`` package (``make test`` and ``make
bench`` install it when missing): ``initdb`` into a temporary directory, ``pg_ctl start``
on a free 127.0.0.1 port with the unix socket in the same directory (so it never touches
the system's /var/run/postgresql), and ``stop()`` removes everything. The server refuses to
run as root, so as root the binaries run as the ``postgres`` user (``runuser``); as any
other user they run directly. Authentication is ``trust`` on loopback only: the cluster
lives for one test session or one benchmark run.

The tests' fixtures (tests/pgcluster.py) and the benchmark (``crm.bench.dashboard``) both
use ``PgCluster``; ``settings`` adds or overrides server settings (the benchmark gives the
server more memory for a million contacts than the tests need).

``PgCluster.create_database(template=...)`` copies a prepared database (for example one the
store has already migrated) in a fraction of a second, so many tests can have their own;
``take_copy(template)`` hands out one made ahead of time.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

ROLE = "crm"
START_TIMEOUT_S = 60
# Durability off (a throwaway cluster), room for many test connections, little memory.
SERVER_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "64MB",
}


class PostgresUnavailable(RuntimeError):
    """PostgreSQL is not installed or would not start; the message says why."""


def find_bindir() -> Path:
    """The newest /usr/lib/postgresql/<version>/bin holding initdb and pg_ctl."""
    root = Path("/usr/lib/postgresql")
    versions = sorted(
        (p for p in root.glob("*/bin") if (p / "initdb").exists() and (p / "pg_ctl").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not versions:
        raise PostgresUnavailable(
            "PostgreSQL is not installed (no /usr/lib/postgresql/<version>/bin/initdb); "
            "`make test` installs it, or run: sudo apt-get install postgresql"
        )
    return versions[-1]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgCluster:
    """One private PostgreSQL server: ``start()``, ``create_database()``, ``stop()``."""

    def __init__(self, bindir: Path | None = None, *, settings: dict[str, str] | None = None) -> None:
        self.bindir = bindir or find_bindir()
        self.settings = {**SERVER_SETTINGS, **(settings or {})}
        self.as_root = os.geteuid() == 0
        self.tmp = Path(tempfile.mkdtemp(prefix="crm-pg-"))
        self.datadir = self.tmp / "data"
        self.log = self.tmp / "server.log"
        self.port = 0
        self._names = itertools.count(1)
        self._lock = threading.Lock()
        self._started = False
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pgcluster-create")
        self._dropper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pgcluster-drop")
        self._spares: dict[str, Future[str]] = {}

    # ---- running the server's programs ------------------------------------------------
    def _run(self, *args: str, timeout: float = START_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)

    def _fail(self, what: str, result: subprocess.CompletedProcess[str]) -> PostgresUnavailable:
        log = self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""
        return PostgresUnavailable(
            f"PostgreSQL: {what} failed (exit {result.returncode}).\n"
            f"stdout: {result.stdout.strip()}\nstderr: {result.stderr.strip()}\nserver log:\n{log}"
        )

    def start(self) -> PgCluster:
        if self.as_root:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise PostgresUnavailable(
                    "running as root and there is no 'postgres' user to run the server as "
                    "(Debian's postgresql package creates it)"
                ) from exc
            os.chown(self.tmp, user.pw_uid, user.pw_gid)
        os.chmod(self.tmp, 0o700)
        result = self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.datadir),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )
        if result.returncode != 0:
            raise self._fail("initdb", result)
        # A port can be taken between choosing and binding it; try a few.
        for _attempt in range(5):
            self.port = _free_port()
            options = " ".join(
                [
                    f"-p {self.port}",
                    "-c listen_addresses=127.0.0.1",
                    f"-c unix_socket_directories={self.tmp}",
                    *(f"-c {name}={value}" for name, value in self.settings.items()),
                ]
            )
            result = self._run(
                str(self.bindir / "pg_ctl"),
                "start",
                "-w",
                "-t",
                str(START_TIMEOUT_S),
                "-D",
                str(self.datadir),
                "-l",
                str(self.log),
                "-o",
                options,
                timeout=START_TIMEOUT_S + 10,
            )
            if result.returncode == 0:
                self._started = True
                break
            if "could not bind" not in self.log.read_text(errors="replace"):
                raise self._fail("pg_ctl start", result)
        else:
            raise self._fail("pg_ctl start (no free port)", result)
        self.psql(f"CREATE ROLE {ROLE} LOGIN CREATEDB")
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown, which ends open sessions) and delete the cluster."""
        with self._lock:
            started, self._started = self._started, False
        try:
            self._worker.shutdown(wait=True, cancel_futures=True)
            self._dropper.shutdown(wait=True, cancel_futures=True)
            if started:
                self._run(str(self.bindir / "pg_ctl"), "stop", "-D", str(self.datadir), "-m", "fast", "-w")
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- administration ---------------------------------------------------------------
    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL as the superuser through the unix socket; return psql's output."""
        result = self._run(
            str(self.bindir / "psql"),
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(self.tmp),
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            database,
            "-c",
            sql,
        )
        if result.returncode != 0:
            raise self._fail(f"psql {sql!r}", result)
        return result.stdout

    def url(self, database: str, user: str = ROLE) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, *, template: str | None = None, name: str | None = None) -> str:
        """A new database owned by the test role, empty or copied from ``template``; its URL.

        Copying needs the template to have no open connections (close engines first).
        """
        with self._lock:
            name = name or f"t_{next(self._names)}"
        source = f" TEMPLATE {template}" if template else ""
        self.psql(f"CREATE DATABASE {name} OWNER {ROLE}{source}")
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, ending any session still connected to it."""
        self.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def take_copy(self, template: str) -> str:
        """A new copy of ``template`` (its URL), made ahead of time while the last test ran.

        One worker thread makes the copies (never two of a template at once) and another
        drops used ones, so a test rarely waits for CREATE DATABASE (~0.1-0.7 s).
        """
        with self._lock:
            ready = self._spares.pop(template, None)
        url = (ready or self._worker.submit(self.create_database, template=template)).result()
        with self._lock:
            if self._started:
                self._spares[template] = self._worker.submit(self.create_database, template=template)
        return url

    def give_back(self, url: str) -> None:
        """Drop a database a test is done with, in the background (disk stays small)."""
        with self._lock:
            if self._started:
                self._dropper.submit(self.drop_database, url.rsplit("/", 1)[1])
