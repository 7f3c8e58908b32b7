"""Where ECharts put a drawn chart's axis labels and names, and whether they read: for the
browser tests of widgets, standalone pages, exported dashboards and Voila.

``axis_texts(page, box)`` reads ECharts' own text elements of the chart in ``box`` (an axis
label's ``anid`` is ``label_<tick>``, its name's ``name``) as their corners on the canvas,
rotation included, with the text each one draws (a cut label ends in "…").
``assert_readable`` checks that no two visible tick labels of an axis overlap (as rotated
rectangles) and that every label and axis name lies inside the canvas.
"""

from __future__ import annotations

from typing import Any

import numpy as np

TOLERANCE = 0.5  # px: anti-aliasing, not overlap

AXIS_TEXTS = """(box) => {
  const chart = box.aiserChart;
  const shown = new Map();  // a text element → what its spans draw
  for (const el of chart.getZr().storage.getDisplayList()) {
    const text = el.parent && el.parent.type === 'text' ? el.parent : el;
    if (el.type === 'tspan') shown.set(text, (shown.get(text) ?? '') + el.style.text);
  }
  const texts = [];
  for (const [text, drawn] of shown) {
    if (!text.anid || text.ignore || text.invisible) continue;
    const role = text.anid === 'name' ? 'name' : text.anid.startsWith('label_') ? 'label' : null;
    let group = text, info = null;
    while (group && !(info = group.__ecComponentInfo)) group = group.parent;
    if (!role || !info || !['xAxis', 'yAxis'].includes(info.mainType)) continue;
    const r = text.getBoundingRect();
    const m = text.getComputedTransform() || [1, 0, 0, 1, 0, 0];
    const at = ([x, y]) => [m[0] * x + m[2] * y + m[4], m[1] * x + m[3] * y + m[5]];
    const right = r.x + r.width, bottom = r.y + r.height;
    const corners = [[r.x, r.y], [right, r.y], [right, bottom], [r.x, bottom]].map(at);
    texts.push({axis: info.mainType + info.index, role, text: drawn, corners});
  }
  return {width: chart.getWidth(), height: chart.getHeight(), texts};
}"""

# The chart has taken its box's width and finished drawing (no animation running).
SETTLED = """(box) => {
  const chart = box.aiserChart;
  if (!chart || chart.getWidth() !== box.clientWidth) return false;
  const zr = chart.getZr();
  return zr.animation.isFinished() && !zr._needsRefresh;
}"""


def settle(page: Any, box: Any, timeout: float = 10_000) -> None:
    """Wait until the chart in `box` (a locator) has its box's width and stands still."""
    page.wait_for_function(SETTLED, arg=box.element_handle(), timeout=timeout)


def axis_texts(page: Any, box: Any) -> dict[str, Any]:
    """{width, height, texts: [{axis, role, text, corners}]} of the chart in `box`."""
    return page.evaluate(AXIS_TEXTS, box.element_handle())


def _shrunk(corners: list[list[float]]) -> np.ndarray:
    """The rectangle pulled in by TOLERANCE on every side (it stays a rectangle)."""
    points = np.array(corners, dtype=float)
    centre = points.mean(axis=0)
    toward = centre - points
    lengths = np.linalg.norm(toward, axis=1, keepdims=True)
    unit = np.divide(toward, lengths, out=np.zeros_like(toward), where=lengths > 0)
    return points + unit * TOLERANCE * np.sqrt(2)


def overlap(a: list[list[float]], b: list[list[float]]) -> bool:
    """Two rotated rectangles overlap unless an edge normal of one separates them."""
    p, q = _shrunk(a), _shrunk(b)
    for shape in (p, q):
        for i in range(4):
            edge = shape[(i + 1) % 4] - shape[i]
            normal = np.array([-edge[1], edge[0]])
            if not normal.any():
                continue
            one, two = p @ normal, q @ normal
            if one.max() <= two.min() or two.max() <= one.min():
                return False
    return True


def assert_readable(layout: dict[str, Any], where: str) -> None:
    """No two visible labels of an axis overlap; every label and name is on the canvas."""
    width, height = layout["width"], layout["height"]
    texts = layout["texts"]
    assert any(t["role"] == "label" for t in texts), f"{where}: no axis labels found"
    for text in texts:
        xs, ys = zip(*text["corners"], strict=True)
        inside = min(xs) >= -TOLERANCE and min(ys) >= -TOLERANCE
        inside = inside and max(xs) <= width + TOLERANCE and max(ys) <= height + TOLERANCE
        assert inside, f"{where}: {text['axis']} {text['role']} {text['text']!r} leaves the canvas"
    for axis in {t["axis"] for t in texts}:
        labels = [t for t in texts if t["axis"] == axis and t["role"] == "label"]
        for i, a in enumerate(labels):
            for b in labels[i + 1 :]:
                assert not overlap(a["corners"], b["corners"]), (
                    f"{where}: {axis} labels {a['text']!r} and {b['text']!r} overlap"
                )
