"""Running the API: uvicorn in a background thread (``aiser.serve()`` from a notebook) or in front.

The kernel keeps running cells while the server answers; ``handle.stop()`` ends it.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Any

from aiser_jupyter.errors import AiserError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from aiser_jupyter.sessions import Session

STARTUP_SECONDS = 30.0


class ServerFailed(AiserError):
    """The API server could not start (the port is taken, the model does not load…)."""


class ServerHandle:
    """A running API server: its `url`, the `api_url` Cube clients take, and `stop()`."""

    def __init__(
        self,
        app: FastAPI,
        host: str = "127.0.0.1",
        port: int = 4000,
        log_level: int | str = "warning",
    ):
        import uvicorn

        config = uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="aiser-serve", daemon=True)
        self.host = host
        self.port = port

    def _run(self) -> None:
        # uvicorn ends with SystemExit when it cannot listen; `start` tells the caller why.
        with contextlib.suppress(SystemExit):
            self._server.run()

    def start(self) -> ServerHandle:
        self._thread.start()
        waited = 0.0
        while not self._server.started:
            if not self._thread.is_alive():
                raise ServerFailed(f"The API server could not listen on {self.host}:{self.port}")
            self._thread.join(0.02)
            waited += 0.02
            if waited > STARTUP_SECONDS:
                self.stop()
                raise ServerFailed(f"The API server did not start in {STARTUP_SECONDS:.0f} s")
        sockets = self._server.servers[0].sockets
        self.port = sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """What ``cubejs(token, {apiUrl})`` takes."""
        return f"{self.url}/cubejs-api/v1"

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C / interrupt stops it)."""
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            self.stop()

    def stop(self) -> None:
        """Stop answering, finish the requests in flight, and release the port."""
        self._server.should_exit = True
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(STARTUP_SECONDS)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<aiser API server {state} at {self.api_url}>"


def serve(
    session: Session,
    port: int = 4000,
    secret: str | None = None,
    background: bool = True,
    *,
    host: str = "127.0.0.1",
    **options: Any,
) -> ServerHandle:
    """Serve `session`'s model on `host`:`port` (0: any free port) as Cube's REST API.

    `secret` checks clients' HS256 JWTs (None: open, so keep `host` on loopback).
    `options` go to `create_app` (``cache_ttl``, ``continue_wait``…). In the background
    the notebook goes on; otherwise this blocks until interrupted. Library log lines
    follow the ``log_level`` setting.
    """
    from aiser_jupyter.logs import level_of
    from aiser_jupyter.server.app import create_app

    app = create_app(session, secret=secret, **options)
    handle = ServerHandle(app, host, port, level_of(session.settings.log_level)).start()
    if not background:
        handle.wait()
    return handle
