"""The Session: the composition root of a kernel. It makes the parts, wires them, and
keeps the few things that span them.

Each part is a plain class in its own package, built here from what it needs (the
settings, the connections, a callable that runs SQL, a change-event callback), never from
the Session:

- ``sources``    (sources.Sources): connections, the current one, files, frames, lakes, APIs;
- ``executor``   (engines.Executor): runs one statement, records it in the history;
- ``router``     (engines.Routing): where a query runs, federation, the result cache;
- ``semantic``   (semantic.SemanticLayer): the Cube model, queries, rollups;
- ``governance`` (governance.Governance): who is asking, audit, lineage, quality, checks;
- ``analyst``    (analysis.Analyst): insights;
- ``agent``      (agent.Agent): ``ask``, feedback, memory, tools.
- ``live``       (live.Live): queries re-run when the tables they read change;
- ``alerts``     (alerts.Alerts): alerts checked, fired once, delivered from an outbox.

The Session itself keeps the settings, the snippets, the history and the change events
(``on_change``: the sidebar and the audit log listen), and the operations that span parts:
``sql`` (snippets, templates, the guard, the router), ``query``, ``ask``, ``preview``,
``chart``. Views (magics, widgets, the sidebar, the server, MCP, the CLI) call these or
the parts directly.
"""

from __future__ import annotations

import contextlib
from collections import ChainMap
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aiser_jupyter.agent.agent import Agent
from aiser_jupyter.agent.workbench import Workbench
from aiser_jupyter.alerts.alerts import Alerts
from aiser_jupyter.analysis.analyst import Analyst
from aiser_jupyter.config import Settings
from aiser_jupyter.engines.execute import Executor
from aiser_jupyter.engines.routing import Routing
from aiser_jupyter.engines.script import SqlRun, run_statements
from aiser_jupyter.errors import AiserError, ParameterError, QueryError
from aiser_jupyter.governance.governance import Governance
from aiser_jupyter.history import HistoryEntry
from aiser_jupyter.live.live import Live
from aiser_jupyter.logs import quiet_libraries
from aiser_jupyter.protection.privacy import Privacy
from aiser_jupyter.result import Result
from aiser_jupyter.security.context import current, subject_of
from aiser_jupyter.security.secrets import redact
from aiser_jupyter.semantic.layer import SemanticLayer
from aiser_jupyter.sources.sources import Sources
from aiser_jupyter.sqltext.params import bind
from aiser_jupyter.sqltext.snippets import Snippets
from aiser_jupyter.sqltext.statements import split, written_tables
from aiser_jupyter.sqltext.templates import has_template, render

if TYPE_CHECKING:
    import pandas as pd

    from aiser_jupyter.agent.answer import Answer
    from aiser_jupyter.analysis.insight import Insights
    from aiser_jupyter.charts import Chart
    from aiser_jupyter.engines.connection import Connection
    from aiser_jupyter.engines.router import RoutePlan
    from aiser_jupyter.security.context import SecurityContext
    from aiser_jupyter.semantic.model import SemanticModel


class Session:
    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings.load()
        quiet_libraries(self.settings.log_level)
        self.snippets = Snippets()
        self.history: list[HistoryEntry] = []
        self._listeners: list[Callable[[str], object]] = []
        self.sources = Sources(self.settings, self.changed)
        self.executor = Executor(self.settings, self.record)
        self.router = Routing(self.settings, self.sources, self.executor)
        self.on_change(self.router.forget)
        self.semantic = SemanticLayer(
            self.settings,
            self.sources.connection,
            self.executor.run,
            changed=self.changed,
            context=lambda: self.governance.security_context,
            refused=lambda kind, query, error: self.governance.refused(kind, query, error),
        )
        self.governance = Governance(self.settings, self.semantic, self.history, self.on_change)
        self.analyst = Analyst(self.semantic.query, lambda: self.semantic.model)
        self.agent = Agent(
            Workbench(
                self.settings,
                self.sources,
                self.semantic,
                sql=self.sql,
                preview=self.preview,
                insights=self.analyst.insights,
                mask_for_model=self.governance.mask_for_model,
                chart=self.chart,
                who=lambda: self.governance.security_context,
            ),
            self.record,
            self.changed,
        )
        self.live = Live(self.on_change)
        self.alerts = Alerts(
            self.settings,
            self.live,
            sql=lambda text: self.sql(text, cache=False),
            query=self.semantic.query,
            query_sql=self.semantic.query_sql,
            model=lambda: self.semantic.model,
            insights=self.analyst.insights,
            audit=self._audit_alert,
        )
        self.router.requester = self._subject
        self.privacy = Privacy(
            self.settings,
            lambda: self.agent.memory,
            lambda: None if self.settings.audit == "off" else self.governance.audit_log,
            self.router,
            self._subject,
        )
        if self.settings.audit != "off":
            self.governance.start_audit()
        self.privacy.start_retention()

    def _subject(self) -> str:
        """Whose query or question this is: the requester, else the OS user (GDPR)."""
        return subject_of(current() or self.governance.security_context)

    def _audit_alert(self, kind: str, sql: str | None, **fields: object) -> None:
        """An alert's firing, into the audit log (when there is one)."""
        if self.settings.audit != "off":
            self.governance.audit_log.submit(kind, sql, **fields)

    # -- change events and the history ---------------------------------------------------

    def on_change(self, listener: Callable[[str], object]) -> Callable[[], None]:
        """Call `listener(what)` when connections, the model, the history or the last answer
        change (what is "connections", "model", "history" or "answer"), or rows of a table
        ("data:<table>", lowercase as the query named it: a write through `sql`, a live
        table's batch), so views (the sidebar) update without polling. Returns a function
        that stops the calls."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def changed(self, what: str) -> None:
        """Tell the listeners; a failing listener is dropped, never the Session's work."""
        for listener in list(self._listeners):
            try:
                listener(what)
            except Exception:  # a broken view must not break a query
                # Streams call this from their threads too: another may have dropped it.
                with contextlib.suppress(ValueError):
                    self._listeners.remove(listener)

    def record(self, entry: HistoryEntry) -> None:
        """A query that ran (or failed) or a question asked, into the history."""
        self.history.append(entry)
        self.changed("history")

    def history_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(
            [e.__dict__ for e in self.history], columns=list(HistoryEntry.__annotations__)
        )

    # -- what the views read most --------------------------------------------------------

    @property
    def model(self) -> SemanticModel | None:
        """The loaded semantic model (``semantic.model``), or None."""
        return self.semantic.model

    @property
    def last_answer(self) -> Answer | None:
        """The agent's last answer (``agent.last_answer``), or None."""
        return self.agent.last_answer

    @property
    def security_context(self) -> SecurityContext | None:
        """Who this Session's queries run as (``governance.security_context``)."""
        return self.governance.security_context

    def connect(self, target: Any, name: str | None = None, **options: Any) -> Connection:
        """Connect a database URL, a file or glob, a named connection, a Spark, lake or API
        URL, or a DataFrame (``sources.connect``)."""
        return self.sources.connect(target, name, **options)

    def connection(self, name: str | None = None) -> Connection:
        """The connection called `name`, else the current one, else the default DuckDB."""
        return self.sources.connection(name)

    def streams(self) -> pd.DataFrame:
        """The live tables (``connect(…, live=True)``): per table, rows applied, lag in
        seconds, how much is behind, state (running, retrying) and the last error."""
        return self.sources.streams.frame()

    def load_model(self, source: Any) -> SemanticModel:
        """Load a Cube data model (a YAML file, a folder of them, or a dict) for `query`."""
        return self.semantic.load_model(source)

    # -- what spans parts ----------------------------------------------------------------

    def query(
        self, query: Mapping[str, Any] | str, connection: str | None = None, **options: Any
    ) -> Result:
        """Answer a Cube REST query through the loaded model (``semantic.query``), as the
        Session's requester unless ``context=`` says who asks."""
        return self.semantic.query(query, connection, **options)

    def ask(self, question: str, model: str | None = None, **options: Any) -> Answer:
        """Answer a business question from the data (``agent.ask``: ``offline``, ``run``,
        ``new``)."""
        return self.agent.ask(question, model, **options)

    def insights(self, data: Any, **options: Any) -> Insights:
        """Ranked insights on a Result, a DataFrame, an Answer or a Cube query
        (``analyst.insights``)."""
        return self.analyst.insights(data, **options)

    def sql(
        self,
        query: str,
        connection: str | None = None,
        params: Mapping[str, Any] | Sequence[Any] | None = None,
        *,
        namespace: Mapping[str, Any] | None = None,
        limit: int | None = None,
        save: str | None = None,
        execute: bool = True,
        read_only: bool = False,
        engine: str | None = None,
        dialect: str | None = None,
        explain: bool = False,
        cache: bool = True,
    ) -> Result | RoutePlan | None:
        """Run `query`; ``:name`` binds from `params` (or `namespace`), ``{{ }}`` renders from it.

        Several statements (``;``-separated, split by sqlglot) run in order on the same
        connection, each as its own query (one history entry each); the Result is the last
        query's, its notes saying how many ran, and a failing statement stops the rest
        (``engines.script``). A statement that writes tells ``data:<table>`` listeners.

        `save` keeps the query as a snippet that later queries may use as a table;
        with `execute` false nothing runs (and None is returned). `read_only` accepts
        read-only statements only (``security.check_sql``, each checked before any runs),
        runs each so that the database refuses writes too, under the ``row_cap`` and
        ``query_timeout`` settings.

        Other queries go through the router (``router.route``): `engine` names the connection or
        engine kind that must run it, `dialect` what the SQL is written in (default: the
        connection's), `explain` returns the RoutePlan instead of running, `cache` false
        skips the result cache.
        """
        self.governance.check_raw_access()
        conn = self.sources.connection(connection)
        written_in = dialect
        dialect = written_in or conn.engine.dialect
        notes: list[str] = []
        lookup: Mapping[str, Any] = namespace or {}
        if isinstance(params, Mapping):
            lookup = ChainMap(dict(params), lookup)
        text = query
        try:
            if has_template(text):
                text = render(text, lookup)
                notes.append("{{ }} rendered into the text")
            if save:
                self.snippets.save(save, text, dialect)
                notes.append(f"saved as {save!r}")
        except AiserError as exc:
            exc.args = (redact(str(exc)),)
            raise
        if not execute:
            return None
        if limit is not None:
            notes.append(f"first {limit:,} rows")
        if read_only:
            notes.append("read-only")
        run = SqlRun(conn, dialect, written_in, lookup, params, notes, limit, read_only)

        def one(statement: str) -> Result | RoutePlan:
            return self._statement(statement, run, engine=engine, explain=explain, cache=cache)

        statements = split(text, dialect)
        if len(statements) <= 1:
            return one(text)
        if explain:
            raise QueryError(
                f"--explain plans one statement; this cell has {len(statements)}: "
                "explain them one at a time"
            )
        if params is not None and not isinstance(params, Mapping):
            raise ParameterError("Positional params bind one statement; name them (:name)")
        return run_statements(statements, one, dialect=dialect, read_only=read_only)  # type: ignore[arg-type]

    def _statement(
        self, text: str, run: SqlRun, *, engine: str | None, explain: bool, cache: bool
    ) -> Result | RoutePlan:
        """One statement of ``sql``: on its connection, or planned by the router; the tables
        it wrote are told to the listeners as ``data:<table>``."""
        conn, dialect, params, lookup = run.conn, run.dialect, run.params, run.lookup
        notes = list(run.notes)

        def prepare() -> tuple[str, Any]:
            composed = self.snippets.compose(text, dialect)
            if params is None or isinstance(params, Mapping):
                return bind(composed, dialect, lookup, conn.engine.paramstyle)
            return composed, list(params)

        if run.read_only:
            return self.executor.run(conn, "sql", text, prepare, run.limit, notes, True)
        if self.sources.connections.keys() <= {conn.name} and not (
            engine or run.written_in or explain
        ):
            # One source and nothing asked of the router: nowhere else to run it, so the
            # planning (a parse, ≈0.3 ms) would only slow a small query down.
            result = self.executor.run(conn, "sql", text, prepare, run.limit, notes)
        else:
            try:
                composed = self.snippets.compose(text, dialect)
            except AiserError as exc:
                exc.args = (redact(str(exc)),)
                raise
            if explain:
                return self.router.route(composed, conn.name, engine, run.written_in)
            values = lookup if params is None or isinstance(params, Mapping) else params
            result = self.router.run(
                composed,
                conn.name,
                values,
                engine=engine,
                dialect=run.written_in,
                limit=run.limit,
                cache=cache,
                notes=notes,
            )
        for table in written_tables(text, dialect):
            self.changed(f"data:{table}")
        return result

    def preview(
        self, table: str, connection: str | None = None, schema: str | None = None, rows: int = 10
    ) -> tuple[Result, int, str]:
        """The first rows of a table, its row count, and a ready ``%%sql`` cell that reads it."""
        from sqlglot import exp

        conn = self.sources.connection(connection)
        name = exp.table_(table, db=schema or None, quoted=True).sql(conn.engine.dialect)
        result = self.sql(f"SELECT * FROM {name}", conn.name, limit=rows)
        counted = conn.engine.execute(f"SELECT count(*) FROM {name}")
        count = int(counted.column(0)[0].as_py()) if counted is not None else 0
        snippet = f"%%sql {conn.name}\nSELECT *\nFROM {name}\nLIMIT 100"
        return result, count, snippet

    def chart(
        self,
        data: Any,
        kind: str | None = None,
        x: str | None = None,
        y: str | Sequence[str] | None = None,
        *,
        max_points: int = 2000,
    ) -> Chart:
        """The chart that fits a Result or DataFrame (or the one asked for), as an ECharts
        option; big series are downsampled and the chart says so."""
        from aiser_jupyter.charts import chart

        return chart(data, kind=kind, x=x, y=y, max_points=max_points)

    def close(self) -> None:
        self.alerts.close()
        self.live.close()
        self.sources.close()
        self.semantic.close()
        self.agent.close()
        self.privacy.close()
        self.governance.stop_audit()


_session: Session | None = None


def get_session() -> Session:
    """The kernel's Session, made on first use."""
    global _session
    if _session is None:
        _session = Session()
    return _session
