"""Charts as HTML that draws with no kernel and no network: ECharts travels inside.

A notebook output carries the bundle gzip-compressed (about 320 KB) so that every
output renders on its own, in nbconvert's HTML or any viewer that runs scripts;
``page`` inlines it plainly for a standalone file.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import uuid
from functools import cache
from pathlib import Path
from typing import Any

STATIC = Path(__file__).resolve().parent.parent / "static"


def static_file(name: str) -> Path:
    """A built front-end file; a clear error when the package was installed without them."""
    path = STATIC / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: the front end was not built (npm --prefix js ci && "
            "npm --prefix js run build, or reinstall aiser-jupyter)"
        )
    return path


@cache
def _compressed_library() -> str:
    return base64.b64encode(gzip.compress(static_file("standalone.js").read_bytes(), 9)).decode()


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element."""
    text = json.dumps(value, allow_nan=False, separators=(",", ":"))
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def _box(element_id: str, height: int, caption: str | None) -> str:
    box = f'<div id="{element_id}" class="aiser-chart" style="width:100%;height:{height}px"></div>'
    if caption:
        note = html.escape(caption)
        box += f'<div class="aiser-caption" style="opacity:.7;font-size:.85em">{note}</div>'
    return box


def fragment(option: dict[str, Any], height: int = 360, caption: str | None = None) -> str:
    """A self-contained output: a box, the compressed library (loaded once per page), a draw."""
    element_id = f"aiser-chart-{uuid.uuid4().hex}"
    loader = (
        "if(!window.aiserChartsLoading){window.aiserChartsLoading=(async()=>{"
        f'const bytes=Uint8Array.from(atob("{_compressed_library()}"),c=>c.charCodeAt(0));'
        "const text=await new Response(new Blob([bytes]).stream()"
        '.pipeThrough(new DecompressionStream("gzip"))).text();'
        'const script=document.createElement("script");script.textContent=text;'
        "document.head.appendChild(script);})();}"
    )
    draw = (
        f"(async()=>{{{loader}await window.aiserChartsLoading;"
        f'window.aiserCharts.render(document.getElementById("{element_id}"),'
        f"{_script_json(option)});}})();"
    )
    return f"{_box(element_id, height, caption)}<script>{draw}</script>"


def page(
    option: dict[str, Any], title: str = "Chart", height: int = 480, caption: str | None = None
) -> str:
    """A whole HTML document with ECharts inlined: open it anywhere, offline."""
    library = (
        static_file("standalone.js").read_text(encoding="utf-8").replace("</script", "<\\/script")
    )
    draw = f'window.aiserCharts.render(document.getElementById("chart"),{_script_json(option)});'
    return (
        '<!doctype html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        '<meta name="viewport" content="width=device-width,initial-scale=1"></head>'
        '<body style="margin:16px;font-family:system-ui,sans-serif">'
        f"{_box('chart', height, caption)}<script>{library}</script><script>{draw}</script>"
        "</body></html>\n"
    )
