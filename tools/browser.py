"""Headless Debian Chromium and a throwaway JupyterLab server, for browser tests and benchmarks.

Chromium comes from Debian's package (``/usr/bin/chromium``), never from a download;
every request to a host other than this machine is blocked and remembered, so a page
that needs the internet fails its test::

    with JupyterLab(notebook_dir) as lab, offline_browser() as (browser, blocked):
        page = browser.new_page()
        page.goto(lab.url("lab/tree/demo.ipynb"))
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

CHROMIUM = os.environ.get("AISER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in {"file", "data", "blob", "about"} or parts.hostname in LOCAL_HOSTS


@contextlib.contextmanager
def offline_browser() -> Iterator[tuple[Any, list[str]]]:
    """A headless Chromium whose pages may reach only this machine; yields the browser
    and the list of blocked URLs (which a test expects to stay empty)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError(
            f"{CHROMIUM} not found: install Debian's chromium package (./dev test does)"
        )
    blocked: list[str] = []

    def guard(route: Any) -> None:
        if is_local(route.request.url):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.route("**/*", guard)
        try:
            yield context, blocked
        finally:
            context.close()
            browser.close()


class ServerProcess:
    """A server started in a subprocess for a test: launched, waited for, stopped."""

    process: subprocess.Popen[bytes] | None = None
    log: Path

    def start(self) -> Any:
        raise NotImplementedError

    def _launch(
        self, command: list[str], env: dict[str, str], ready: Any, what: str, timeout: float
    ) -> None:
        """Run `command` (output to the log) until `ready()` says it serves, or fail clearly."""
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{what} exited:\n{self.log.read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                if ready():
                    return
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"{what} did not start in {timeout:.0f} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()


class JupyterLab(ServerProcess):
    """``jupyter lab`` on loopback with a token, isolated config, and the app exposed to
    scripts (``window.jupyterapp``) so tests can run commands such as "run all cells"."""

    def __init__(self, root: str | os.PathLike[str], env: dict[str, str] | None = None):
        self.root = Path(root)
        self.port = free_port()
        self.token = uuid.uuid4().hex
        self.home = tempfile.mkdtemp(prefix="aiser-lab-")
        self.extra_env = env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.log = Path(self.home) / "lab.log"

    def url(self, path: str = "lab") -> str:
        sep = "&" if "?" in path else "?"
        return f"http://127.0.0.1:{self.port}/{path}{sep}token={self.token}"

    def start(self, timeout: float = 90) -> JupyterLab:
        env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": f"{self.home}/config",
            "JUPYTER_RUNTIME_DIR": f"{self.home}/runtime",
            "JUPYTERLAB_SETTINGS_DIR": f"{self.home}/settings",
            "JUPYTERLAB_WORKSPACES_DIR": f"{self.home}/workspaces",
            **self.extra_env,
        }
        command = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.news_url=None",  # nothing fetched from the internet
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--ServerApp.disable_check_xsrf=True",
        ]
        if os.geteuid() == 0:
            command.append("--allow-root")
        # No "get Jupyter news?" prompt over the notebook (it would fetch from the internet).
        notification = Path(self.home, "settings", "@jupyterlab", "apputils-extension")
        notification.mkdir(parents=True)
        (notification / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')

        def ready() -> bool:
            with urllib.request.urlopen(self.url("api/status"), timeout=2) as reply:
                json.load(reply)
            return True

        self._launch(command, env, ready, "jupyter lab", timeout)
        return self


PAINTED = """(box) => {
  const canvas = box.querySelector('canvas');
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  const colors = new Set();
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] > 0) {
      painted++;
      colors.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
    }
  }
  return { share: painted / (canvas.width * canvas.height), colors: colors.size };
}"""


def assert_drawn(page: Any, box: Any, screenshot: str | os.PathLike[str] | None = None) -> None:
    """The chart's canvas in `box` (a locator) is painted with several colours, not blank;
    a screenshot of it is kept at `screenshot` when given."""
    painted = page.evaluate(PAINTED, box.element_handle())
    if screenshot is not None:
        Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
        box.screenshot(path=str(screenshot))
    assert painted["share"] > 0.005, painted  # a blank canvas paints nothing
    assert painted["colors"] > 3, painted


def run_notebook(context: Any, lab: JupyterLab, name: str, ready: str) -> Any:
    """A new page with notebook `name` of `lab` open, its kernel started and every cell run,
    once the selector `ready` shows."""
    page = context.new_page()
    page.goto(lab.url(f"lab/tree/{name}"))
    page.wait_for_function(
        "window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel",
        timeout=90_000,
    )
    page.evaluate("window.jupyterapp.shell.currentWidget.sessionContext.ready")
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_selector(ready, timeout=90_000)
    return page
