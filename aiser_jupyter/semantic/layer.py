"""The semantic part: the loaded Cube model, queries compiled through it, rollups.

``SemanticLayer(settings, connection, run, ...)`` owns the model, its rollups and the
local DuckDB that holds them. It reads connections through `connection` (a name or None
to a Connection), runs SQL through `run` (``Executor.run``: history, secrets hidden),
learns who is asking from `context` (the Session's security context) and reports a query
refused before it ran to `refused` (the audit log). `changed("model")` tells the views.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aiser_jupyter.errors import AiserError, UnknownConnection
from aiser_jupyter.result import Result

if TYPE_CHECKING:
    from aiser_jupyter.config import Settings
    from aiser_jupyter.engines.connection import Connection
    from aiser_jupyter.security.context import SecurityContext
    from aiser_jupyter.semantic.model import SemanticModel
    from aiser_jupyter.semantic.preagg import PreAggregationStore, Rollup


class SemanticLayer:
    """The loaded model (``model``) and Cube queries over it."""

    def __init__(
        self,
        settings: Settings,
        connection: Callable[[str | None], Connection],
        run: Callable[..., Result],
        *,
        changed: Callable[[str], None] = lambda what: None,
        context: Callable[[], SecurityContext | None] = lambda: None,
        refused: Callable[[str, Any, Exception], None] = lambda kind, query, error: None,
    ):
        self.settings = settings
        self.connection = connection
        self.run = run
        self.changed = changed
        self.context = context
        self.refused = refused
        self.model: SemanticModel | None = None
        self._rollups: list[Rollup] = []
        self._preaggregations: PreAggregationStore | None = None

    def load_model(self, source: Any) -> SemanticModel:
        """Load a Cube data model (a YAML file, a folder of them, or a dict) for `query`."""
        from aiser_jupyter.semantic.build import load_model
        from aiser_jupyter.semantic.preagg import rollups

        model = load_model(source)
        self._rollups = rollups(model)
        self.model = model
        self.changed("model")
        return model

    def query_sql(
        self,
        query: Mapping[str, Any] | str,
        connection: str | None = None,
        *,
        context: SecurityContext | Mapping[str, Any] | None = None,
    ) -> str:
        """The SQL `query` compiles to, in the dialect of the connection it would run on."""
        return self.compile_query(query, connection, context=context)[1]

    def compile_query(
        self,
        query: Mapping[str, Any] | str,
        connection: str | None = None,
        *,
        context: SecurityContext | Mapping[str, Any] | None = None,
    ) -> tuple[str, str]:
        """The connection `query` runs on, and its SQL there (on the raw tables, not a rollup:
        SQL that runs as it is, e.g. in a ``%%sql`` cell), under the access policies; secrets
        such as the masking salt show as ``***``."""
        from aiser_jupyter.security.secrets import redact

        plan, conn = self._plan(query, connection, self._who(context))
        return conn.name, redact(plan.sql(conn.engine.dialect)[0])

    def query(
        self,
        query: Mapping[str, Any] | str,
        connection: str | None = None,
        *,
        context: SecurityContext | Mapping[str, Any] | None = None,
        rollups: bool = True,
    ) -> Result:
        """Answer a Cube REST query (a dict, or its JSON/YAML text) through the loaded model.

        When a rollup pre-aggregation gives the same numbers, it answers instead of the raw
        tables, and the Result says so. `context` (a SecurityContext or a JWT's claims) is who
        asks; without it, the Session's own (``set_context``). The model's access policies
        decide what that requester sees. `rollups` False reads the raw tables even where a
        rollup would answer (a live query must see rows the rollup has not caught up with).
        """
        from aiser_jupyter.security.context import acting_as
        from aiser_jupyter.semantic.runner import compare_queries, parse_text

        raw = parse_text(query) if isinstance(query, str) else dict(query)
        who = self._who(context)
        with acting_as(who):
            if compared := compare_queries(raw):
                return self._compare(raw, compared, connection, who)
            return self._query(raw, connection, who, rollups)

    def _query(
        self,
        raw: dict[str, Any],
        connection: str | None,
        who: SecurityContext | None,
        rollups: bool = True,
    ) -> Result:
        try:
            plan, conn = self._plan(raw, connection, who)
        except AiserError as exc:
            self.refused("query", raw, exc)
            raise
        use = rollups and not plan.masks
        rollup, compiler = plan.pre_aggregation(self._rollups) if use else (None, None)
        notes = ["semantic query"]
        if rollup is None:
            sql, total_sql = plan.sql(conn.engine.dialect)
        else:
            store = self.preaggregations()
            table = store.ensure(self.model, rollup, conn)
            sql, total_sql = plan.sql("duckdb", rollup, compiler, table)
            conn = store.connection
            notes.append(f"pre-aggregation {rollup.full_name}")
        if plan.masks:
            notes.append(f"masked: {', '.join(sorted(plan.masks))}")
        result = self.run(conn, "query", sql, lambda: (sql, None), None, notes)
        result.query, result.annotation = raw, plan.annotation
        result.pre_aggregation = rollup.full_name if rollup is not None else None
        if total_sql is not None:
            counted = conn.engine.execute(total_sql)
            result.total = int(counted.column(0)[0].as_py()) if counted is not None else None
        return result

    def _compare(
        self,
        raw: dict[str, Any],
        compared: list[tuple[str, dict[str, Any]]],
        connection: str | None,
        who: SecurityContext | None,
    ) -> Result:
        """One result for a compareDateRange query: each range's rows, labelled."""
        import pyarrow as pa

        parts = [(label, self._query(part, connection, who)) for label, part in compared]
        tables = [
            result.to_arrow().append_column(
                "compareDateRange", pa.array([label] * result.rowcount, pa.string())
            )
            for label, result in parts
        ]
        first = parts[0][1]
        return Result(
            pa.concat_tables(tables),
            sql=";\n".join(result.sql for _, result in parts),
            connection=first.connection,
            elapsed=sum(result.elapsed for _, result in parts),
            notes=[*first.notes, f"{len(parts)} date ranges compared"],
            display_rows=self.settings.display_rows,
            query=raw,
            annotation=first.annotation,
        )

    def preaggregations(self) -> PreAggregationStore:
        """The local DuckDB that holds rollup tables (opened on first use)."""
        if self._preaggregations is None:
            from aiser_jupyter.semantic.preagg import PreAggregationStore

            self._preaggregations = PreAggregationStore(
                self.settings.preaggregation_cache,
                shared=self.settings.preaggregation_shared or None,
            )
        return self._preaggregations

    def refresh_pre_aggregations(self, force: bool = True) -> list[str]:
        """Build (or rebuild) every rollup of the model now; their names."""
        if self.model is None:
            raise UnknownConnection("No semantic model loaded")
        built = []
        for rollup in self._rollups:
            source = self.connection(self.model.cubes[rollup.cube].data_source)
            self.preaggregations().ensure(self.model, rollup, source, force=force)
            built.append(rollup.full_name)
        return built

    def _who(self, context: SecurityContext | Mapping[str, Any] | None) -> SecurityContext | None:
        """The requester: the one given, else the Session's own (``set_context``), if any."""
        from aiser_jupyter.security.context import as_context

        given = as_context(context)
        return given if given is not None else self.context()

    def _plan(
        self,
        query: Mapping[str, Any] | str,
        connection: str | None,
        context: SecurityContext | None = None,
    ) -> Any:
        from aiser_jupyter.semantic.runner import prepare_query

        if self.model is None:
            raise UnknownConnection(
                "No semantic model loaded: aiser.model(PATH) or %aiser model load PATH"
            )
        plan = prepare_query(self.model, query, context)
        return plan, self.connection(connection or plan.data_source)

    def auto_model(
        self,
        connection: str | None = None,
        tables: Sequence[str] | None = None,
        path: str | None = None,
    ) -> str:
        """A starting Cube YAML model of a connection's tables; written to `path` when given."""
        from pathlib import Path

        from aiser_jupyter.semantic.automodel import auto_model_yaml

        text = auto_model_yaml(self.connection(connection), tables)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def close(self) -> None:
        if self._preaggregations is not None:
            self._preaggregations.engine.close()
            self._preaggregations = None
