"""Throwaway Redis server on loopback, for tests and benchmarks (Debian's ``redis-server``).

Stdlib only::

    with RedisServer() as redis:
        serve(cache=redis.url)
        redis.stop()   # Redis going away mid-run
        redis.start()  # and coming back, on the same port

It listens on a free port of 127.0.0.1 only, keeps nothing on disk (no RDB, no AOF) and
works in a temporary folder removed afterwards.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from types import TracebackType

__all__ = ["RedisServer"]

HOST = "127.0.0.1"
STARTUP_SECONDS = 10.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class RedisServer:
    """A ``redis-server`` of its own; `url` is ``redis://127.0.0.1:PORT/0``."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                "redis-server was not found. Install Debian's `redis-server` package "
                "(`apt-get install -y redis-server`, or run `./dev test`, which does)."
            )
        self.binary = binary
        self.port = _free_port()
        self.folder = tempfile.mkdtemp(prefix="aiser-redis-")
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> RedisServer:
        command = [self.binary, "--bind", HOST, "--port", str(self.port), "--dir", self.folder]
        command += ["--save", "", "--appendonly", "no", "--protected-mode", "yes"]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer in {STARTUP_SECONDS:.0f} s")

    def stop(self) -> None:
        """Kill it (as a crash would: no goodbye to its clients)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
