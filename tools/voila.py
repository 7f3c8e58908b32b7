"""A throwaway Voila server on loopback, for browser tests and benchmarks::

    with Voila("examples/dashboard.ipynb") as voila, offline_browser() as (browser, blocked):
        page = browser.new_page()
        page.goto(voila.url())

No token (Voila's default), no browser opened, isolated Jupyter config and runtime folders,
and aiser's Voila template (Voila's lab template without its Font Awesome CDN link; on the
Jupyter path here) unless `template` names another, so the page needs nothing but this
server.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from tools.browser import ServerProcess, free_port

TEMPLATES = Path(__file__).resolve().parent.parent / "aiser_jupyter" / "boards"
"""The folder holding voila/templates/aiser (a Jupyter data folder)."""


class Voila(ServerProcess):
    """``voila NOTEBOOK`` on 127.0.0.1 at a free port; `url()` is the dashboard page."""

    def __init__(
        self,
        notebook: str | os.PathLike[str],
        env: dict[str, str] | None = None,
        template: str | None = "aiser",
    ):
        self.notebook = Path(notebook).resolve()
        self.template = template
        self.port = free_port()
        self.home = tempfile.mkdtemp(prefix="aiser-voila-")
        self.extra_env = env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.log = Path(self.home) / "voila.log"

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def start(self, timeout: float = 60) -> Voila:
        paths = [str(TEMPLATES), *filter(None, [os.environ.get("JUPYTER_PATH")])]
        env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": f"{self.home}/config",
            "JUPYTER_RUNTIME_DIR": f"{self.home}/runtime",
            "JUPYTER_PATH": os.pathsep.join(paths),
            **self.extra_env,
        }
        command = [
            sys.executable,
            "-m",
            "voila",
            str(self.notebook),
            "--no-browser",
            "--Voila.ip=127.0.0.1",
            f"--Voila.port={self.port}",
            "--Voila.port_retries=0",
        ]
        if self.template:
            command.append(f"--template={self.template}")

        def ready() -> bool:
            with socket.create_connection(("127.0.0.1", self.port)):
                return True

        self._launch(command, env, ready, "voila", timeout)
        return self
