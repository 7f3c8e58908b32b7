"""ConnectionPanel: connect a source from a form, test it first, see what is connected.

Passwords are typed into a masked field and cleared as soon as they are used, so they
never stay in the widget's state (which a notebook may save) nor in any output.
"""

from __future__ import annotations

from html import escape
from typing import Any

import ipywidgets as w

from aiser_jupyter.errors import AiserError
from aiser_jupyter.security.secrets import redact
from aiser_jupyter.sources.targets import build_url

KINDS = {
    "File (CSV, Parquet, JSON, Excel)": "file",
    "DuckDB": "duckdb",
    "PostgreSQL": "postgresql",
    "MySQL": "mysql",
    "SQLite": "sqlite",
    "Other (SQLAlchemy URL)": "url",
}
FIELDS = {
    "file": ["path"],
    "duckdb": ["path"],
    "postgresql": ["host", "port", "database", "user", "password"],
    "mysql": ["host", "port", "database", "user", "password"],
    "sqlite": ["path"],
    "url": ["url"],
}
HINTS = {
    "path": "data/*.parquet, warehouse.duckdb …",
    "host": "localhost",
    "port": "default",
    "url": "dialect+driver://user@host/db",
}


class ConnectionPanel(w.VBox):
    """A form over ``Session.test_connection`` and ``Session.connect``, and the list of
    live connections."""

    def __init__(self, session: Any):
        self.session = session
        self.kind = w.Dropdown(options=list(KINDS), description="Source")
        self.name = w.Text(description="Name", placeholder="optional")
        self.inputs: dict[str, w.Text] = {
            field: (w.Password if field == "password" else w.Text)(
                description=field.capitalize(), placeholder=HINTS.get(field, "")
            )
            for field in {f for names in FIELDS.values() for f in names}
        }
        self.test_button = w.Button(description="Test connection", icon="plug")
        self.connect_button = w.Button(description="Connect", button_style="primary")
        self.message = w.HTML()
        self.live = w.HTML()
        self.form = w.VBox()
        self.kind.observe(lambda _: self._show_fields(), names="value")
        self.test_button.on_click(lambda _: self.test())
        self.connect_button.on_click(lambda _: self.connect())
        super().__init__(
            [
                self.kind,
                self.form,
                self.name,
                w.HBox([self.test_button, self.connect_button]),
                self.message,
                w.HTML("<b>Connections</b>"),
                self.live,
            ]
        )
        self._show_fields()
        self.refresh()

    @property
    def source_kind(self) -> str:
        return KINDS[self.kind.value]

    def _show_fields(self) -> None:
        self.form.children = [self.inputs[field] for field in FIELDS[self.source_kind]]

    def target(self) -> str:
        """What the form describes, as a URL or a file path (for Session.connect)."""
        values = {field: box.value.strip() for field, box in self.inputs.items()}
        kind = self.source_kind
        if kind in ("file", "url"):
            return values["path" if kind == "file" else "url"]
        if kind in ("postgresql", "mysql") and values["port"] and not values["port"].isdigit():
            raise AiserError(f"The port must be a number, not {values['port']!r}")
        return build_url(kind, **values)

    def test(self) -> bool:
        """Try the connection without keeping it; the verdict goes under the buttons."""
        try:
            if self.source_kind == "file":
                from aiser_jupyter.sources.targets import matching_files

                found = matching_files(self.target())
                verdict = f"OK: {len(found)} file{'s' if len(found) != 1 else ''} found"
            else:
                verdict = self.session.sources.test_connection(self.target())
        except (AiserError, OSError, ValueError) as exc:
            return self._say(f"✗ {exc}", ok=False)
        return self._say(f"✓ {verdict}", ok=True)

    def connect(self) -> bool:
        """Connect what the form describes; the password field is emptied either way."""
        try:
            connection = self.session.connect(self.target(), name=self.name.value.strip() or None)
        except (AiserError, OSError, ValueError) as exc:
            return self._say(f"✗ {exc}", ok=False)
        finally:
            self.inputs["password"].value = ""
        self.refresh()
        return self._say(f"✓ Connected {connection.name} ({connection.kind})", ok=True)

    def refresh(self) -> None:
        """Redraw the list of connections (current one in bold)."""
        frame = self.session.sources.connections_frame()
        rows = "".join(
            f"<tr><td>{f'<b>{escape(row.name)}</b>' if row.current else escape(row.name)}</td>"
            f"<td>{escape(row.kind)}</td><td>{escape(row.url)}</td></tr>"
            for row in frame.itertuples()
        )
        self.live.value = f"<table>{rows}</table>" if rows else "<i>none yet</i>"

    def _say(self, text: str, ok: bool) -> bool:
        color = "var(--jp-success-color1, green)" if ok else "var(--jp-error-color1, #c00)"
        self.message.value = f'<span style="color:{color}">{escape(redact(text))}</span>'
        return ok
