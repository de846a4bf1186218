"""A real PostgreSQL 15 server for tests and benchmarks: ``initdb`` + ``pg_ctl`` in a temp folder, on a free port.

The server runs as an unprivileged user (``initdb`` refuses root; tests run as root in CI, so the ``postgres``
system user runs it via ``runuser``), listens on 127.0.0.1 only, keeps its Unix socket inside its temp folder and
requires a password (SCRAM), which clients get from ``PGPASSWORD`` as a deployment would, never from the URL.
``postgres_server`` is the session-scoped pytest fixture; it stops the server at teardown, also after a failure.
Missing binaries FAIL the fixture with the command that installs them: nothing is skipped.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

PG_BIN = Path(os.environ.get("TABREPRO_PG_BIN", "/usr/lib/postgresql/15/bin"))
INSTALL = "apt-get install -y postgresql-15"
USER = "tabrepro"


class PostgresError(RuntimeError):
    """The test server could not be set up or controlled."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One throw-away cluster: ``start()``, ``stop(mode)``, ``create_database()`` and the URL/env to reach it."""

    def __init__(self, root: Path, *, port: int | None = None) -> None:
        self.root, self.port = root, port or _free_port()
        self.data, self.socket_dir, self.log = root / "data", root / "sock", root / "server.log"
        self.password = secrets.token_hex(12)
        self._runas = _unprivileged_user()
        self._databases = 0
        self._clients: dict[str, optuna.storages.RDBStorage] = {}

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(PG_BIN / tool), *args]
        if self._runas:
            command = ["runuser", "-u", self._runas, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, cwd=self.root)
        if check and done.returncode != 0:
            tail = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise PostgresError(f"{tool} {' '.join(args)} failed ({done.returncode}):\n{done.stderr}\n{tail}")
        return done

    def init(self) -> None:
        """Create the cluster: one superuser ``tabrepro`` with a random password, SCRAM for every connection."""
        self.socket_dir.mkdir(parents=True)
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._runas:
            shutil.chown(self.root, self._runas)
            for path in (self.socket_dir, pwfile):
                shutil.chown(path, self._runas)
        self._run("initdb", "-N", "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}", "-A", "scram-sha-256",
                  "-E", "UTF8", "--locale=C")  # fmt: skip
        pwfile.unlink()

    def start(self) -> None:
        options = f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c max_connections=50"
        self._run("pg_ctl", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.log), "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m mode`` (``immediate``: the database goes away as in a crash)."""
        self._run("pg_ctl", "-w", "-D", str(self.data), "-m", mode, "stop")

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    @property
    def env(self) -> dict[str, str]:
        """What a client process needs besides the URL: the password, the way libpq reads it."""
        return {"PGPASSWORD": self.password}

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL (psycopg 3) without the password: it travels in ``PGPASSWORD``."""
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{database}"

    def storage(self, url: str) -> optuna.storages.RDBStorage:
        """This process's own client of a study database (the password passed to the driver, not the environment),
        one per database: polling opens no new connections, and a restart of the server is survived."""
        if url not in self._clients:
            kwargs = {"pool_pre_ping": True, "connect_args": {"password": self.password}}
            self._clients[url] = optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        return self._clients[url]

    def create_database(self) -> str:
        """A fresh, empty database; returns its URL."""
        import psycopg

        self._databases += 1
        name = f"study_{self._databases}"
        conninfo = f"host=127.0.0.1 port={self.port} user={USER} dbname=postgres password={self.password}"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)


def _unprivileged_user() -> str | None:
    """Who runs the server: ``postgres`` when we are root (``initdb`` refuses root), else ourselves."""
    if os.geteuid() != 0:
        return None
    if shutil.which("runuser") is None:
        raise PostgresError("running as root needs `runuser` (util-linux) to start PostgreSQL as user postgres")
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresError(f"running as root needs the `postgres` system user; `{INSTALL}` creates it") from None
    return "postgres"


def check_binaries() -> None:
    """Raise ``PostgresError`` naming what is missing and how to install it."""
    missing = [tool for tool in ("initdb", "pg_ctl", "postgres") if not (PG_BIN / tool).is_file()]
    if missing:
        raise PostgresError(
            f"PostgreSQL 15 server binaries not found: {', '.join(str(PG_BIN / t) for t in missing)}. "
            f"Install them with `{INSTALL}` (Debian/Ubuntu; .ci/run does), or point TABREPRO_PG_BIN at their folder."
        )


def started_server() -> PostgresServer:
    """A running server in a new temp folder (under /tmp: pytest's own temp root is private to root)."""
    check_binaries()
    root = Path(tempfile.mkdtemp(prefix="tabrepro-pg-"))
    server = PostgresServer(root)
    try:
        server.init()
        server.start()
    except BaseException:
        remove_server(server)
        raise
    return server


def remove_server(server: PostgresServer) -> None:
    """Stop the server (if it runs) and delete its folder."""
    try:
        if server.data.exists() and server.running():
            server.stop("immediate")
    finally:
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL 15 for the whole session; the fixture FAILS (no skip) when it cannot start."""
    try:
        server, problem = started_server(), ""
    except PostgresError as exc:
        problem = str(exc)
    if problem:  # outside the except block: one message, not a chain of two
        pytest.fail(problem, pytrace=False)
    try:
        yield server
    finally:
        remove_server(server)
