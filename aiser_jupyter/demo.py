"""Render the quickstart notebook on the sample data: ``python -m aiser_jupyter.demo``.

Writes ``DIR/model/`` (the sample's semantic model, which the notebook loads),
``DIR/quickstart.ipynb`` (executed), ``DIR/quickstart.html`` and the dashboard the notebook
exports, ``DIR/retail_dashboard.html`` (default ``DIR`` is ``build``). The pages need no
network: charts carry ECharts inside, and the page leaves out nbconvert's CDN scripts.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
QUICKSTART = EXAMPLES / "quickstart.ipynb"
MODEL = EXAMPLES / "model"
CELL_TIMEOUT = 120
OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
"""
"""nbconvert's lab page without the scripts it would fetch from a CDN (require.js, MathJax,
Mermaid, the widget manager): the notebooks here need none of them, and the page must open
offline."""


class NotebookFailed(RuntimeError):
    """A notebook cell raised; the message names the notebook and shows the error."""


def kernel_manager() -> Any:
    """A kernel manager whose ``python3`` kernel is ipykernel on *this* interpreter.

    A ``python3`` kernelspec elsewhere on the Jupyter path (say, in ``~/.local``) could
    point at another Python, without this package installed.
    """
    from ipykernel.kernelspec import RESOURCES, get_kernel_dict
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import KernelManager

    class ThisPython(KernelSpecManager):
        def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
            return KernelSpec(resource_dir=RESOURCES, **get_kernel_dict())

    return KernelManager(kernel_name="python3", kernel_spec_manager=ThisPython())


def cell_writer(nb: Any) -> Any:
    """An ``on_cell_executed`` hook that does what JupyterLab does with a cell's
    ``set_next_input`` (``%%ask`` writing its ``%%sql`` cell): insert the text as a new
    code cell right below, which then runs like the others (nbclient runs ``nb.cells`` in
    order, so a cell inserted after the current one runs next)."""
    from nbformat.v4 import new_code_cell

    def insert(cell: Any, cell_index: int, execute_reply: Any) -> None:
        for payload in execute_reply.get("content", {}).get("payload", []):
            if payload.get("source") == "set_next_input" and not payload.get("replace"):
                written = new_code_cell(payload["text"], metadata={"aiser": {"written": True}})
                nb.cells.insert(cell_index + 1, written)

    return insert


def run_notebook(nb: Any, cwd: Path, data_dir: Path | None = None, name: str = "notebook") -> Any:
    """Execute `nb` (in place, and return it) in `cwd`, as a notebook front end would: cells
    that a cell writes below itself (``%%ask``) are inserted and run. ``AISER_SAMPLE_DIR`` is
    `data_dir` when given (notebooks that read the sample as Parquet files)."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        km=kernel_manager(),
        resources={"metadata": {"path": str(cwd)}},
        store_widget_state=False,  # no widget manager reads it offline; it holds chart.js
        on_cell_executed=cell_writer(nb),
    )
    env = dict(os.environ)
    if data_dir is not None:
        env["AISER_SAMPLE_DIR"] = str(data_dir)
    try:
        client.execute(env=env)
    except CellExecutionError as exc:
        message = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # no terminal colours
        raise NotebookFailed(f"{name}: a cell failed\n{message}") from None
    return nb


def to_html(nb: Any) -> str:
    """The executed notebook as one HTML page that opens offline, images embedded."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="lab",
        template_file="offline.html.j2",
        extra_loaders=[DictLoader({"offline.html.j2": OFFLINE_TEMPLATE})],
        embed_images=True,
    )
    body, _ = exporter.from_notebook_node(nb)
    return body


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aiser_jupyter.demo", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("build"), help="output folder")
    args = parser.parse_args(argv)
    if not QUICKSTART.is_file():
        print(f"demo: {QUICKSTART} not found (run from a source checkout)", file=sys.stderr)
        return 1

    import nbformat

    started = time.perf_counter()
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if MODEL.is_dir():  # the notebook loads model/retail.yml, next to it as in examples/
        shutil.copytree(MODEL, out / "model", dirs_exist_ok=True)
    try:
        nb = nbformat.read(QUICKSTART, as_version=4)
        run_notebook(nb, cwd=out, name=QUICKSTART.name)
    except NotebookFailed as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    nbformat.write(nb, out / "quickstart.ipynb")
    html = out / "quickstart.html"
    html.write_text(to_html(nb), encoding="utf-8")
    seconds = time.perf_counter() - started
    print(f"Rendered in {seconds:.1f} s; executed notebook: {out / 'quickstart.ipynb'}")
    print(f"Open {html} in a browser")
    return 0


if __name__ == "__main__":
    sys.exit(main())
