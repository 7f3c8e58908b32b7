"""The HTML of a dashboard's cards (KPI, table, text), shared by the live widgets, the static
notebook output and the exported file, so that all three look the same."""

from __future__ import annotations

import html
import numbers
from datetime import datetime, time
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

STATIC = Path(__file__).resolve().parent / "static"


@cache
def static_text(name: str) -> str:
    """A file of the dashboard's front end (CSS, the export's filtering script)."""
    return (STATIC / name).read_text(encoding="utf-8")


def format_value(value: Any, fmt: str | None = None) -> str:
    """A value as a dashboard shows it: thousands separators, $ for currency, % for percent,
    dates without a midnight time."""
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        if isinstance(value, datetime) and value.time() == time():
            value = value.date()
        return html.escape(str(value))
    if fmt == "currency" or not float(value).is_integer():
        text = f"{float(value):,.2f}"
    else:
        text = f"{int(value):,}"
    return f"${text}" if fmt == "currency" else f"{text}%" if fmt == "percent" else text


def kpi_html(value: Any, fmt: str | None, caption: str = "") -> str:
    note = f'<div class="aiser-kpi-note">{html.escape(caption)}</div>' if caption else ""
    return f'<div class="aiser-kpi-value">{format_value(value, fmt)}</div>{note}'


def table_html(frame: Any, titles: dict[str, str], formats: dict[str, str | None]) -> str:
    """A plain table: member titles as headers, values formatted like the KPIs."""
    head = "".join(f"<th>{html.escape(titles.get(c, c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{format_value(v, formats.get(c))}</td>"
            for c, v in zip(frame.columns, row, strict=True)
        )
        + "</tr>"
        for row in frame.itertuples(index=False)
    )
    head = f"<thead><tr>{head}</tr></thead>"
    return f'<table class="aiser-dash-table">{head}<tbody>{body}</tbody></table>'


def text_html(markdown: str) -> str:
    import mistune

    return str(mistune.html(markdown))


def card_html(index: int, title: str | None, width: int, kind: str, body: str) -> str:
    header = f'<div class="aiser-card-title">{html.escape(title)}</div>' if title else ""
    return (
        f'<div class="aiser-card aiser-card-{kind} aiser-span-{width}" data-index="{index}">'
        f"{header}"
        f'<div class="aiser-card-body">{body}</div></div>'
    )


def style_tag() -> str:
    return f"<style>{static_text('dashboard.css')}</style>"


def column_title(result: Any, column: str) -> str:
    for members in (result.annotation or {}).values():
        if column in members:
            return members[column].get("shortTitle") or members[column].get("title") or column
    return column


def column_format(result: Any, column: str) -> str | None:
    measures = (result.annotation or {}).get("measures", {})
    return measures.get(column, {}).get("format")
