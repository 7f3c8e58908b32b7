"""aiser-jupyter: an AI-assisted analytics workbench in a Jupyter notebook.

``%load_ext aiser_jupyter`` adds the magics; the same things are a function away::

    import aiser_jupyter as aiser
    aiser.connect("orders.parquet")
    aiser.sql("SELECT count(*) FROM orders").df

Everything heavy (DuckDB, pandas, drivers) loads on first use, not on import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiser_jupyter.__about__ import __version__

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from aiser_jupyter.agent.answer import Answer
    from aiser_jupyter.alerts.alert import Alert
    from aiser_jupyter.analysis import Insights
    from aiser_jupyter.boards.board import Dashboard
    from aiser_jupyter.engines.connection import Connection
    from aiser_jupyter.governance.checks import CheckReport
    from aiser_jupyter.governance.lineage import Lineage
    from aiser_jupyter.governance.quality import Profile
    from aiser_jupyter.result import Result
    from aiser_jupyter.security.context import SecurityContext
    from aiser_jupyter.semantic.model import SemanticModel
    from aiser_jupyter.sessions import Session
    from aiser_jupyter.widgets.chart import ChartWidget
    from aiser_jupyter.widgets.connections import ConnectionPanel
    from aiser_jupyter.widgets.schema import SchemaBrowser
    from aiser_jupyter.widgets.table import ResultTable

__all__ = [
    "AccessDenied",
    "AiserError",
    "AlertError",
    "CheckError",
    "ConditionError",
    "ConnectionFailed",
    "DashboardError",
    "EncryptionKeyError",
    "InsightsError",
    "ModelError",
    "ModelUnavailable",
    "ParameterError",
    "QueryError",
    "QueryInterrupted",
    "QueryTimeout",
    "RoutingError",
    "ServerFailed",
    "UnknownConnection",
    "UnsafeSQLError",
    "__version__",
    "alert",
    "ask",
    "browse",
    "chart",
    "check",
    "connect",
    "dashboard",
    "insights",
    "lineage",
    "load_ipython_extension",
    "load_sample",
    "mcp_server",
    "model",
    "panel",
    "privacy",
    "profile",
    "query",
    "serve",
    "session",
    "set_context",
    "sql",
    "table",
    "tool",
]


def load_ipython_extension(shell: Any) -> None:
    from aiser_jupyter.magics import register
    from aiser_jupyter.widgets.display import register_formatters

    register(shell)
    register_formatters(shell)
    if getattr(shell, "kernel", None) is not None:  # the JupyterLab sidebar talks to kernels
        from aiser_jupyter.sidebar import register_sidebar

        register_sidebar(shell)


def session() -> Session:
    """The kernel's Session: connections, the current one, snippets, settings, history."""
    from aiser_jupyter.sessions import get_session

    return get_session()


def connect(target: Any, name: str | None = None, **options: Any) -> Connection:
    """Connect a database URL, a file or glob, a connections.toml name, or a DataFrame."""
    return session().connect(target, name=name, **options)


def sql(
    query: str,
    connection: str | None = None,
    params: Mapping[str, Any] | Sequence[Any] | None = None,
    **options: Any,
) -> Result | None:
    """Run `query` on a connection (the current one by default) and return its Result.

    Options as in `Session.sql`: ``limit``, ``save`` (keep as a snippet), ``execute``
    (False only saves, and returns None), ``namespace`` (where ``:name`` values come from).
    """
    return session().sql(query, connection=connection, params=params, **options)


def ask(
    question: str, model: str | None = None, *, offline: bool = False, run: bool = True
) -> Answer:
    """Answer a business question from the data: ``.text``, ``.sql``, ``.df``, ``.chart``,
    ``.steps``. A model (``AISER_MODEL``, or `model`) through litellm, else offline."""
    return session().ask(question, model, offline=offline, run=run)


def alert(
    name: str,
    source: Any,
    condition: str,
    every: Any = None,
    notify: str | Sequence[str] = (),
    **options: Any,
) -> Alert:
    """Watch a number and tell when a condition on it becomes true. `source`: SQL, a semantic
    member or a Cube query; `condition`: ``"value > 100"``, ``"change < -0.2"`` (over value,
    previous and change) or ``"anomaly"``; checked each `every` ("5m"), when its tables
    change, or now with ``.check()``; `notify`: ``"webhook:URL"``, ``"email:ADDRESS"``,
    ``"notebook"``; ``quiet="1h"``: no second firing that soon."""
    return session().alerts.alert(name, source, condition, every, notify, **options)


def set_context(context: Any = None, /, **who: Any) -> SecurityContext | None:
    """Who this notebook's queries run as (``user``, ``groups``, ``tenant``, attributes): the
    semantic model's access policies filter and mask for them. None: the notebook's owner."""
    return session().governance.set_context(context, **who)


def lineage(target: Any, column: str | None = None) -> Lineage:
    """The source tables and columns of a semantic member (``"orders.revenue"``) or a Result."""
    return session().governance.lineage(target, column)


def profile(table: str, connection: str | None = None) -> Profile:
    """Types, nulls, distinct counts, ranges, frequent values and suspected keys of a table."""
    return session().governance.profile(table, connection)


def check(checks: Any = None, *, cube: str | None = None) -> CheckReport:
    """Run data checks (given, or declared in the model): a pass/fail report."""
    return session().governance.check(checks, cube=cube)


def tool(fn: Any = None, *, name: str | None = None, description: str | None = None) -> Any:
    """Give the agent a Python function as a tool (its JSON schema from the type hints and
    docstring); usable as ``@aiser.tool`` or ``aiser.tool(fn)``."""
    return session().agent.tool(fn, name=name, description=description)


def mcp_server(host: str = "127.0.0.1", port: int = 8765) -> Any:
    """Serve this notebook's data (sources, tables, the semantic model, read-only SQL) to other
    AI applications over MCP (streamable HTTP); ``.url``, ``.stop()``."""
    from aiser_jupyter.mcp.server import serve_http

    return serve_http(session(), host, port)


def serve(
    port: int = 4000, secret: str | None = None, background: bool = True, **options: Any
) -> Any:
    """Serve the loaded semantic model as Cube's REST API (``/cubejs-api/v1/load``, ``/sql``,
    ``/meta``; JWT auth when `secret` is given); ``.url``, ``.stop()``."""
    from aiser_jupyter.server.run import serve as run

    return run(session(), port, secret, background, **options)


def insights(data: Any, **options: Any) -> Insights:
    """What changed, what is unusual and why, in a Result, a DataFrame or a Cube query: trend,
    seasons, anomalies, a forecast, drivers by dimension; ranked, each in one sentence."""
    return session().insights(data, **options)


def load_sample(seed: int = 7) -> Connection:
    """Load the sample retail business (customers, products, orders) into the default DuckDB."""
    return session().sources.load_sample(seed)


def query(query: Mapping[str, Any] | str, connection: str | None = None) -> Result:
    """Answer a Cube REST query (dict, JSON or YAML) through the loaded semantic model."""
    return session().query(query, connection=connection)


def model(source: Any = None) -> SemanticModel | None:
    """Load a Cube data model (YAML file, folder or dict) into the Session; no argument: the
    loaded one. ``aiser.model.auto(connection)`` drafts a model from a connection's tables."""
    if source is None:
        return session().model
    return session().load_model(source)


def _auto(
    connection: str | None = None, tables: Sequence[str] | None = None, path: str | None = None
) -> str:
    """A starting Cube YAML model from a connection's schema (keys, joins, measures inferred)."""
    return session().semantic.auto_model(connection, tables, path)


model.auto = _auto  # type: ignore[attr-defined]


def chart(
    data: Any, kind: str | None = None, x: str | None = None, y: Any = None, **options: Any
) -> ChartWidget:
    """The chart that fits a Result or DataFrame (kind, x, y override the choice), as a live
    widget: ``.option``, ``.reason``, ``.on_select(callback)``, ``.to_html(path)``."""
    from aiser_jupyter.widgets.chart import ChartWidget

    return ChartWidget(session().chart(data, kind=kind, x=x, y=y, **options))


def table(data: Any, page_size: int = 25) -> ResultTable:
    """A paged, sortable view of a Result or DataFrame; pages are read in the kernel."""
    from aiser_jupyter.widgets.table import ResultTable

    return ResultTable(data, page_size=page_size)


def panel() -> ConnectionPanel:
    """A form to test and make connections, with the list of live ones."""
    from aiser_jupyter.widgets.connections import ConnectionPanel

    return ConnectionPanel(session())


def browse() -> SchemaBrowser:
    """Connections, tables, columns and the semantic model as a tree, with table previews."""
    from aiser_jupyter.widgets.schema import SchemaBrowser

    return SchemaBrowser(session())


def dashboard(
    title: str,
    items: Sequence[Any],
    filters: Sequence[Any] = (),
    refresh: Any = None,
    live: bool = False,
) -> Dashboard:
    """Charts, KPI cards, tables and texts on a responsive grid. `items`: Cube query dicts,
    Results, markdown, or ``aiser.dashboard.chart/kpi/table/text(...)``; `filters`: member
    names or ``aiser.dashboard.date_range/values(...)``; `refresh`: "5min" re-runs every item
    on that schedule; `live`: an item re-runs when a table it reads changes."""
    from aiser_jupyter.boards import dashboard as make

    return make(title, items, filters=filters, refresh=refresh, live=live)


def _board_part(name: str) -> Any:
    """``aiser.dashboard.NAME``: the dashboard item or filter builder of ``boards``, imported
    when first called."""

    def build(*args: Any, **kwargs: Any) -> Any:
        from aiser_jupyter import boards

        return getattr(boards, name)(*args, **kwargs)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"aiser_jupyter.boards.{name}: see its docstring."
    return build


for _name in ("chart", "kpi", "table", "text", "date_range", "values"):
    setattr(dashboard, _name, _board_part(_name))
del _name

def privacy(subject: str | None = None) -> dict[str, Any]:
    """Everything held about a person (default: who asks now, else the OS user): memory
    entries, audit entries, cached answers. ``aiser.privacy.export(subject, path)`` writes
    it as JSON, ``aiser.privacy.erase(subject)`` removes it (the audit log by
    crypto-shredding), ``aiser.privacy.purge()`` applies the retention settings."""
    return session().privacy.held(subject)


def _privacy_export(subject: str | None, path: str) -> dict[str, int]:
    """Write everything held about `subject` as JSON to `path`; how many of each kind."""
    return session().privacy.export(subject, path)


def _privacy_erase(subject: str | None = None) -> dict[str, int]:
    """Remove everything held about `subject`; how many of each kind."""
    return session().privacy.erase(subject)


def _privacy_purge() -> dict[str, int]:
    """Apply ``AISER_AUDIT_RETENTION_DAYS`` and ``AISER_MEMORY_RETENTION_DAYS`` now."""
    return session().privacy.purge()


privacy.export = _privacy_export  # type: ignore[attr-defined]
privacy.erase = _privacy_erase  # type: ignore[attr-defined]
privacy.purge = _privacy_purge  # type: ignore[attr-defined]

_LAZY_ERRORS = {
    **dict.fromkeys(
        [
            "AiserError",
            "ConnectionFailed",
            "ParameterError",
            "QueryError",
            "QueryInterrupted",
            "QueryTimeout",
            "UnknownConnection",
            "UnsafeSQLError",
        ],
        "aiser_jupyter.errors",
    ),
    "AccessDenied": "aiser_jupyter.security.context",
    "AlertError": "aiser_jupyter.alerts.alerts",
    "ConditionError": "aiser_jupyter.alerts.condition",
    "CheckError": "aiser_jupyter.governance.checks",
    "DashboardError": "aiser_jupyter.boards.spec",
    "EncryptionKeyError": "aiser_jupyter.security.keys",
    "InsightsError": "aiser_jupyter.analysis.insight",
    "ModelError": "aiser_jupyter.semantic.loader",
    "ModelUnavailable": "aiser_jupyter.agent.llm",
    "RoutingError": "aiser_jupyter.engines.catalog",
    "ServerFailed": "aiser_jupyter.server.run",
}
"""The error classes a user catches, imported when first named (``%load_ext`` stays a few
milliseconds: it imports none of their modules)."""


def __getattr__(name: str) -> Any:
    """The error classes of `_LAZY_ERRORS`, imported when first named."""
    module = _LAZY_ERRORS.get(name)
    if module is not None:
        import importlib

        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'aiser_jupyter' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
