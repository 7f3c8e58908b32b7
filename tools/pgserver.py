"""Throwaway PostgreSQL server on loopback, for tests and benchmarks.

Stdlib only, so it works before any project dependency is installed::

    with PostgresServer() as pg:
        engine = create_engine(pg.url)
        pg.psql("create table t (x int)")
        kill_backends(pg)  # simulate the database dropping our connections

Real password auth (scram-sha-256) is enabled, so tests exercise the same
connection path as production. ``initdb``/``postgres`` refuse to run as root;
when root we run the server commands as the ``postgres`` system user.
"""

from __future__ import annotations

import atexit
import glob
import os
import shlex
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from urllib.parse import urlparse

__all__ = ["PostgresServer", "find_bindir", "kill_backends"]

USER = "aiser"
PASSWORD = "aiser-secret-pw"
DBNAME = "aiser"
HOST = "127.0.0.1"
_SERVER_USER = "postgres"  # OS account used for the server when we are root
_INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl) were not found. Install Debian's "
    "`postgresql` package: `apt-get install -y postgresql` (or run `./dev test`, "
    "which does it for you)."
)


def _version_key(path: str) -> tuple[int, ...]:
    """Sort /usr/lib/postgresql/<ver>/bin numerically, so 15 beats 9.6."""
    ver = Path(path).parent.name
    return tuple(int(p) for p in ver.split(".") if p.isdigit())


def find_bindir() -> Path:
    """Return the directory holding initdb/pg_ctl/postgres.

    Order: ``pg_config --bindir`` (only if it really holds initdb, since Debian's
    libpq-dev ships a pg_config without the server), then the newest
    /usr/lib/postgresql/*/bin, then ``initdb`` on PATH.
    """
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            out = ""
        if out and (Path(out) / "initdb").is_file() and (Path(out) / "pg_ctl").is_file():
            return Path(out)
    candidates = [
        d
        for d in glob.glob("/usr/lib/postgresql/*/bin")
        if os.path.isfile(os.path.join(d, "initdb"))
    ]
    if candidates:
        return Path(max(candidates, key=_version_key))
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise RuntimeError(_INSTALL_HINT)


def _find_psql(bindir: Path | None = None) -> str:
    """psql is only a client, so any version works; prefer the server's own."""
    for cand in ([bindir / "psql"] if bindir else []) + [Path("/usr/bin/psql")]:
        if cand.is_file():
            return str(cand)
    found = shutil.which("psql")
    if found:
        return found
    raise RuntimeError("psql client not found. " + _INSTALL_HINT)


def _clean_env() -> dict[str, str]:
    """Drop the caller's PG* variables so they cannot redirect our commands."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.setdefault("LC_ALL", "C.UTF-8")
    return env


def _run_psql(psql: str, url: str, sql: str, timeout: float = 60) -> str:
    """Run SQL (fed on stdin, so several statements are fine) and return rows."""
    proc = subprocess.run(
        [psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", "-"],
        input=sql,
        capture_output=True,
        check=False,
        text=True,
        env=_clean_env(),
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"psql failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout.strip()


def _free_port() -> int:
    """Let the kernel pick an unused loopback port (tiny race, start() retries)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _traversable_by_others(path: str) -> bool:
    """True if every ancestor has o+x, i.e. the postgres user can reach it."""
    p = Path(path).resolve()
    return all(os.stat(d).st_mode & stat.S_IXOTH for d in [p, *p.parents])


class PostgresServer:
    """A private PostgreSQL instance in a temp dir, listening on 127.0.0.1.

    Superuser ``aiser`` / ``aiser-secret-pw``, database ``aiser``. Use as a
    context manager or call ``start()``/``stop()``; an atexit hook stops it if
    the caller forgets.
    """

    def __init__(
        self, bindir: str | Path | None = None, start_timeout: int = 30, *, logical: bool = False
    ) -> None:
        """`logical`: ``wal_level=logical`` and room for replication slots (change data
        capture tests); off by default, so other servers start as before."""
        self.bindir = Path(bindir) if bindir else find_bindir()
        self.logical = logical
        self.psql_bin = _find_psql(self.bindir)
        self.user = USER
        self.password = PASSWORD
        self.dbname = DBNAME
        self.host = HOST
        self.start_timeout = start_timeout
        self.port: int | None = None
        self.tmpdir: Path | None = None
        self._owner_pid = os.getpid()
        self._as_root = hasattr(os, "geteuid") and os.geteuid() == 0

    # -- lifecycle -----------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.port is not None

    @property
    def url(self) -> str:
        """SQLAlchemy/libpq URL; valid only while running."""
        if self.port is None:
            raise RuntimeError("PostgresServer is not running; call start() first")
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.dbname}"

    @property
    def datadir(self) -> Path:
        assert self.tmpdir is not None, "not started"
        return self.tmpdir / "data"

    def start(self) -> PostgresServer:
        """initdb + pg_ctl start + create the database; a few seconds in all."""
        if self.running:
            return self
        self.tmpdir = self._make_tmpdir()
        self._owner_pid = os.getpid()
        atexit.register(self._atexit_stop)
        try:
            self._initdb()
            self._start_server()
            self.psql(f'create database "{self.dbname}"', dbname="postgres")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop immediately (no checkpoint needed: data is thrown away); idempotent."""
        tmpdir, self.tmpdir, port, self.port = self.tmpdir, None, self.port, None
        atexit.unregister(self._atexit_stop)
        if tmpdir is None:
            return
        try:
            if port is not None or (tmpdir / "data" / "postmaster.pid").exists():
                self._pg(
                    "pg_ctl",
                    "stop",
                    "-D",
                    str(tmpdir / "data"),
                    "-m",
                    "immediate",
                    "-w",
                    cwd=tmpdir,
                    check=False,
                )
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)

    def _atexit_stop(self) -> None:
        """Fallback for callers that forgot stop(); a forked child must not stop it."""
        if os.getpid() == self._owner_pid:
            self.stop()

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- helpers for tests ---------------------------------------------------
    def psql(self, sql: str, dbname: str | None = None) -> str:
        """Run SQL through the psql client (over TCP, with the password)."""
        url = self.url
        if dbname is not None:
            url = url.rsplit("/", 1)[0] + "/" + dbname
        return _run_psql(self.psql_bin, url, sql)

    def halt(self) -> None:
        """``pg_ctl stop`` keeping the data and the port: the server has gone away until
        `resume` (tests of clients that must retry)."""
        assert self.tmpdir is not None, "not started"
        self._pg("pg_ctl", "stop", "-D", str(self.datadir), "-m", "fast", "-w")

    def resume(self) -> None:
        """Start a `halt`ed server again, on the same port with the same data."""
        assert self.tmpdir is not None and self.port is not None, "not started"
        self._pg_ctl_start(self.port, check=True)

    def terminate_connections(self) -> int:
        """Kill every other backend on our database; returns how many."""
        return kill_backends(self)

    # -- internals -----------------------------------------------------------
    def _make_tmpdir(self) -> Path:
        base = tempfile.gettempdir()
        if self._as_root and not _traversable_by_others(base):
            base = "/tmp"  # e.g. TMPDIR=/root/tmp: the postgres user can't get in
        tmp = Path(tempfile.mkdtemp(prefix="aiser-pg-", dir=base))
        if self._as_root:
            shutil.chown(tmp, user=_SERVER_USER, group=_SERVER_USER)
        return tmp

    def _pg(
        self, prog: str, *args: str, cwd: Path | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a server binary, as the postgres user when we are root."""
        cmd = [str(self.bindir / prog), *args]
        if self._as_root:
            if shutil.which("runuser"):
                cmd = ["runuser", "-u", _SERVER_USER, "--", *cmd]
            else:
                cmd = ["su", _SERVER_USER, "-s", "/bin/sh", "-c", shlex.join(cmd)]
        proc = subprocess.run(
            cmd,
            check=False,
            cwd=cwd or self.tmpdir,  # the caller's cwd may be unreadable for postgres
            env=_clean_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=self.start_timeout + 30,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"{prog} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}"
            )
        return proc

    def _initdb(self) -> None:
        assert self.tmpdir is not None
        pwfile = self.tmpdir / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._as_root:
            shutil.chown(pwfile, user=_SERVER_USER, group=_SERVER_USER)
        pwfile.chmod(0o600)
        try:
            self._pg(
                "initdb",
                "-D",
                str(self.datadir),
                f"--username={self.user}",
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def _pg_ctl_start(self, port: int, check: bool) -> subprocess.CompletedProcess[str]:
        assert self.tmpdir is not None
        log, timeout = str(self.tmpdir / "postgres.log"), str(self.start_timeout)
        options = self._options(port)
        return self._pg(
            "pg_ctl", "start", "-w", "-t", timeout, "-D", str(self.datadir), "-l", log,
            "-o", options, check=check,
        )  # fmt: skip

    def _options(self, port: int) -> str:
        """The server's command-line settings (``pg_ctl -o``)."""
        assert self.tmpdir is not None
        opts = (
            f"-p {port} -k {self.tmpdir / 'sock'} -c listen_addresses={HOST} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        if self.logical:
            # Commits flushed at once (as servers run by default): decoding reads flushed WAL.
            opts += " -c wal_level=logical -c max_replication_slots=20 -c max_wal_senders=20"
            opts += " -c synchronous_commit=on"
        return opts

    def _start_server(self) -> None:
        assert self.tmpdir is not None
        sockdir = self.tmpdir / "sock"
        sockdir.mkdir()
        if self._as_root:
            shutil.chown(sockdir, user=_SERVER_USER, group=_SERVER_USER)
        log = self.tmpdir / "postgres.log"
        last_err = ""
        for _ in range(3):  # another process may grab the port between probe and bind
            port = _free_port()
            proc = self._pg_ctl_start(port, check=False)
            if proc.returncode == 0:
                self.port = port
                return
            last_err = proc.stderr.strip() or proc.stdout.strip()
            self._pg("pg_ctl", "stop", "-D", str(self.datadir), "-m", "immediate", check=False)
            time.sleep(0.2)
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(f"pg_ctl start failed: {last_err}\n{tail}")


def kill_backends(url_or_server: str | PostgresServer) -> int:
    """Terminate all other connections to the database (simulates a DB restart).

    Returns the number of backends terminated.
    """
    if isinstance(url_or_server, PostgresServer):
        url, psql = url_or_server.url, url_or_server.psql_bin
    else:
        url, psql = url_or_server, _find_psql()
    dbname = urlparse(url).path.lstrip("/") or DBNAME
    lit = dbname.replace("'", "''")
    out = _run_psql(
        psql,
        url,
        "select pg_terminate_backend(pid) from pg_stat_activity "
        f"where datname = '{lit}' and pid <> pg_backend_pid();",
    )
    return sum(1 for line in out.splitlines() if line.strip() == "t")
