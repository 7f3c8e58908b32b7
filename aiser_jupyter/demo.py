"""Render the quickstart notebook on the sample data: ``python -m aiser_jupyter.demo``.

Writes ``DIR/data/*.parquet``, ``DIR/quickstart.ipynb`` (executed) and
``DIR/quickstart.html`` (default ``DIR`` is ``build``).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

QUICKSTART = Path(__file__).resolve().parent.parent / "examples" / "quickstart.ipynb"
CELL_TIMEOUT = 120


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


def run_notebook(nb: Any, cwd: Path, data_dir: Path, name: str = "notebook") -> Any:
    """Execute `nb` (in place, and return it) in `cwd`, with ``AISER_SAMPLE_DIR=data_dir``."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        km=kernel_manager(),
        resources={"metadata": {"path": str(cwd)}},
    )
    env = {**os.environ, "AISER_SAMPLE_DIR": str(data_dir)}
    try:
        client.execute(env=env)
    except CellExecutionError as exc:
        message = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # no terminal colours
        raise NotebookFailed(f"{name}: a cell failed\n{message}") from None
    return nb


def to_html(nb: Any) -> str:
    """The executed notebook as one HTML page, images embedded."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="lab", embed_images=True).from_notebook_node(nb)
    return body


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aiser_jupyter.demo", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("build"), help="output folder")
    args = parser.parse_args(argv)
    if not QUICKSTART.is_file():
        print(f"demo: {QUICKSTART} not found (run from a source checkout)", file=sys.stderr)
        return 1

    import nbformat

    from aiser_jupyter.sources.sample import write_retail

    out: Path = args.out.resolve()
    data_dir = out / "data"
    write_retail(data_dir)
    print(f"Sample data written to {data_dir}")
    try:
        nb = nbformat.read(QUICKSTART, as_version=4)
        run_notebook(nb, cwd=out, data_dir=data_dir, name=QUICKSTART.name)
    except NotebookFailed as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    nbformat.write(nb, out / "quickstart.ipynb")
    html = out / "quickstart.html"
    html.write_text(to_html(nb), encoding="utf-8")
    print(f"Open {html} in a browser (executed notebook: {out / 'quickstart.ipynb'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
