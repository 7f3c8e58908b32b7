"""The wheel's build hook function: both front ends, so the wheel needs no node to install.

hatch-jupyter-builder runs one build function; this one bundles the widgets (js/, npm,
with the hook's build-kwargs) and then builds the JupyterLab sidebar (labextension/,
jlpm from the jupyter-builder package and @jupyterlab/builder from npm) into
labextension/dist/aiser-jupyter, which the wheel maps to share/jupyter/labextensions/.
"""

from __future__ import annotations

from typing import Any

from hatch_jupyter_builder import npm_builder


def build(target_name: str, version: str, **js_kwargs: Any) -> None:
    npm_builder(target_name, version, **js_kwargs)
    npm_builder(target_name, version, path="labextension", build_cmd="build:prod", npm=["jlpm"])
