"""``%%sql``, ``%sql`` and ``%aiser``: parse the line, call the Session, show what it returns.

Nothing heavy is imported here, so ``%load_ext aiser_jupyter`` stays fast; the
Session (and with it DuckDB and pandas) loads on the first query.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_cell_magic, line_magic, magics_class


@dataclass
class SqlOptions:
    connection: str | None = None
    out: str | None = None
    save: str | None = None
    execute: bool = True
    limit: int | None = None
    read_only: bool = False
    chart: str | None = None
    """``--chart [KIND]``: "" lets the shape choose."""
    engine: str | None = None
    dialect: str | None = None
    explain: bool = False
    cache: bool = True
    live: str | None = None
    """``--live [INTERVAL]``: re-run when the tables change ("" means on changes only)."""
    rest: list[str] = field(default_factory=list)


_VALUE_OPTIONS = {
    "-o": "out",
    "--out": "out",
    "--save": "save",
    "--limit": "limit",
    "-c": "connection",
    "--connection": "connection",
    "--engine": "engine",
    "--dialect": "dialect",
}
_FLAG_OPTIONS = {
    "--no-execute": ("execute", False),
    "--read-only": ("read_only", True),
    "--explain": ("explain", True),
    "--no-cache": ("cache", False),
}
SQL_USAGE = (
    "%%sql [CONNECTION] [-o VAR] [--save NAME] [--no-execute] [--limit N] [--read-only]"
    " [--engine NAME] [--dialect D] [--explain] [--no-cache] [--chart [KIND]]"
    " [--live [INTERVAL]]"
)


def _is_option(word: str) -> bool:
    return (
        word in _VALUE_OPTIONS
        or word in _FLAG_OPTIONS
        or (word.startswith("--") and word[2:3].isalpha())
    )


def parse_sql_options(line: str, *, stop_at_sql: bool) -> tuple[SqlOptions, str]:
    """Options at the front of `line`; with `stop_at_sql`, the rest is SQL, left untouched."""
    options = SqlOptions()
    rest = line.strip()
    while rest:
        word, _, tail = rest.partition(" ")
        if not _is_option(word):
            if stop_at_sql:
                break
            options.rest.append(word)
            rest = tail.strip()
            continue
        if word == "--live":
            every, _, after = tail.strip().partition(" ")
            is_every = every[:1].isdigit()
            options.live = every if is_every else ""
            tail = after if is_every else tail
        elif word == "--chart":
            from aiser_jupyter.charts.recommend import KINDS

            kind, _, after = tail.strip().partition(" ")
            options.chart = kind if kind in KINDS else ""
            tail = after if kind in KINDS else tail
        elif word in _FLAG_OPTIONS:
            attribute, value = _FLAG_OPTIONS[word]
            setattr(options, attribute, value)
        elif word in _VALUE_OPTIONS:
            value, _, tail = tail.strip().partition(" ")
            if not value:
                raise UsageError(f"{word} needs a value. Usage: {SQL_USAGE}")
            if _VALUE_OPTIONS[word] == "limit":
                if not value.isdigit():
                    raise UsageError(f"--limit takes a number of rows, not {value!r}")
                options.limit = int(value)
            else:
                setattr(options, _VALUE_OPTIONS[word], value)
        else:
            raise UsageError(f"Unknown option {word}. Usage: {SQL_USAGE}")
        rest = tail.strip()
    return options, rest


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message}\n{self.format_usage()}")


def _aiser_parser() -> _Parser:
    parser = _Parser(prog="%aiser", add_help=False)
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)
    connect = commands.add_parser("connect", help="connect a URL, a file, a name or a DataFrame")
    connect.add_argument("target")
    connect.add_argument("--name", "-n")
    connect.add_argument("--live", action="store_true", help="keep a live replica in DuckDB")
    connect.add_argument("--tables", help="live: comma-separated tables (default: all)")
    connect.add_argument("--keep-slot", action="store_true", help="live: keep the slot")
    connect.add_argument("--interval", type=float, help="live: seconds between polls")
    commands.add_parser("streams", help="live tables: rows applied, lag, state, last error")
    commands.add_parser("connections", help="list connections")
    use = commands.add_parser("use", help="make a connection the current one")
    use.add_argument("name")
    disconnect = commands.add_parser("disconnect", help="close a connection")
    disconnect.add_argument("name")
    schema = commands.add_parser("schema", help="tables and columns")
    schema.add_argument("what", nargs="?", help="CONNECTION, TABLE or CONNECTION.TABLE")
    remember = commands.add_parser("remember", help="keep a fact or 'term = meaning' for %%ask")
    remember.add_argument("text", nargs="+")
    feedback = commands.add_parser("feedback", help="was the last %%ask answer right?")
    feedback.add_argument("verdict", choices=["good", "bad"])
    memory = commands.add_parser("memory", help="what the agent remembers")
    memory.add_argument(
        "action", nargs="?", choices=["list", "search", "forget", "clear", "export"], default="list"
    )
    memory.add_argument("arg", nargs="?", help="search: words; forget: an id; export: a path")
    audit = commands.add_parser("audit", help="who ran what, when, and whether it was allowed")
    audit.add_argument("action", nargs="?", choices=["list", "report"], default="list")
    audit.add_argument("--html", metavar="PATH", help="report: also write a page for an auditor")
    audit.add_argument("--since", help="an age such as 2h or 7d, or an ISO time")
    audit.add_argument("--user")
    audit.add_argument("--export", metavar="PATH", help="write JSON lines instead")
    mcp = commands.add_parser("mcp", help="MCP servers whose tools the agent may use")
    mcp.add_argument("action", choices=["add", "enable", "disable", "remove", "serve"])
    mcp.add_argument("name", nargs="?")
    mcp.add_argument("target", nargs="*", help="add: a URL, or -- COMMAND ARGS; enable: tools")
    mcp.add_argument("--timeout", type=float, default=30.0)
    mcp.add_argument("--port", type=int, default=8765)
    commands.add_parser("tools", help="the agent's tools: built-in, Python, MCP")
    live = commands.add_parser("live", help="live results and watches: list, or stop")
    live.add_argument("action", nargs="?", choices=["list", "stop"], default="list")
    live.add_argument("key", nargs="?", help="stop: one watch's key (default: all)")
    alert = commands.add_parser("alert", help="make, check, list or remove alerts")
    alert.add_argument("action", choices=["add", "check", "list", "remove", "deliveries"])
    alert.add_argument("name", nargs="?")
    alert.add_argument("source", nargs="?", help="add: SQL or a semantic member (quoted)")
    alert.add_argument("condition", nargs="?", help="add: e.g. 'value > 100'")
    alert.add_argument("--every", help="add: a schedule such as 5m")
    alert.add_argument("--notify", action="append", default=[], help="webhook:URL, email:ADDR")
    alert.add_argument("--quiet", help="add: no second firing within this (e.g. 1h)")
    insights = commands.add_parser("insights", help="what changed, what is unusual and why")
    insights.add_argument("target", nargs="?", help="a variable, a Cube query (JSON) or _")
    insights.add_argument("--measure", action="append")
    insights.add_argument("--by")
    insights.add_argument("--limit", type=int, default=20)
    commands.add_parser("panel", help="a form to test and make connections")
    commands.add_parser("browse", help="browse connections, tables and the semantic model")
    commands.add_parser("snippets", help="saved queries")
    cache = commands.add_parser("cache", help="the result cache: stats or clear")
    cache.add_argument("action", nargs="?", choices=["stats", "clear"], default="stats")
    commands.add_parser("history", help="queries run in this kernel")
    commands.add_parser("status", help="data protection: encryption at rest, retention")
    sample = commands.add_parser("sample", help="load the sample retail tables into DuckDB")
    sample.add_argument("--seed", type=int, default=7)
    model = commands.add_parser("model", help="show, load or draft the semantic model")
    model.add_argument(
        "action", nargs="?", choices=["show", "load", "auto", "meta"], default="show"
    )
    model.add_argument("path", nargs="?", help="load: a YAML file or folder; auto: output file")
    model.add_argument("--connection", "-c")
    model.add_argument("--tables", help="auto: comma-separated tables (default: all)")
    return parser


def _ask_parser() -> _Parser:
    parser = _Parser(prog="%%ask", add_help=False)
    parser.add_argument("--model", "-m", help="a litellm model name (default: settings.model)")
    parser.add_argument("--offline", action="store_true", help="use the offline planner")
    parser.add_argument("--no-run", action="store_true", help="plan and show SQL, run nothing")
    parser.add_argument("--new", action="store_true", help="not a follow-up of the last answer")
    parser.add_argument("--no-cell", action="store_true", help="do not add the SQL as a cell")
    parser.add_argument("-o", "--out", help="keep the Answer in this variable")
    return parser


def _query_parser() -> _Parser:
    parser = _Parser(prog="%%query", add_help=False)
    parser.add_argument("connection", nargs="?")
    parser.add_argument("-o", "--out")
    parser.add_argument("--sql", action="store_true", help="show the SQL instead of running it")
    parser.add_argument("--live", nargs="?", const="", metavar="INTERVAL", help="re-run on change")
    return parser


@magics_class
class AiserMagics(Magics):
    @property
    def session(self) -> Any:
        from aiser_jupyter.sessions import get_session

        return get_session()

    @line_cell_magic
    def sql(self, line: str, cell: str | None = None) -> Any:
        """Run SQL on a connection; the cell's value is the result DataFrame.

        %%sql [CONNECTION] [-o VAR] [--save NAME] [--no-execute] [--limit N] [--read-only]
              [--chart [KIND]] [--live [INTERVAL]]
        """
        if cell is None:
            options, query = parse_sql_options(line, stop_at_sql=True)
            first, _, after = query.partition(" ")
            if (
                after.strip()
                and first in self.session.sources.connections
                and options.connection is None
            ):
                options.connection, query = first, after
        else:
            options, _ = parse_sql_options(line, stop_at_sql=False)
            if len(options.rest) > 1:
                raise UsageError(f"Unexpected {' '.join(options.rest[1:])!r}. Usage: {SQL_USAGE}")
            if options.rest:
                options.connection = options.rest[0]
            query = cell
        if not query.strip():
            raise UsageError(f"No SQL to run. Usage: {SQL_USAGE}")
        key = self._cell_key(query)
        self.session.live.stop(key)  # a cell run again replaces its live result
        ran: dict[str, Any] = {
            "connection": options.connection,
            "namespace": self.shell.user_ns,
            "limit": options.limit,
            "read_only": options.read_only,
            "engine": options.engine,
            "dialect": options.dialect,
        }
        if options.live is not None:
            from aiser_jupyter.widgets.live import live_cell

            return live_cell(
                self.session.live,
                key,
                lambda: self.session.sql(query, cache=False, **ran),
                query,
                every=options.live,
                dialect=options.dialect
                or self.session.connection(options.connection).engine.dialect,
                chart=self._chart_of(options.chart),
                out=self._keep(options.out),
            )
        result = self.session.sql(
            query,
            save=options.save,
            execute=options.execute,
            explain=options.explain,
            cache=options.cache,
            **ran,
        )
        if options.explain:
            return result
        if result is None:
            print(f"Saved snippet {options.save!r}." if options.save else "Not executed.")
            return None
        frame = result.df
        if options.out:
            self.shell.user_ns[options.out] = frame
        if options.chart is not None:
            from IPython.display import display

            display(self.session.chart(result, kind=options.chart or None))
        return frame

    def _cell_key(self, cell: str) -> str:
        """Which cell runs (JupyterLab's cell id, else the query's text), so running it again
        stops its previous live result."""
        parent = getattr(self.shell, "parent_header", None) or {}
        cell_id = (parent.get("metadata") or {}).get("cellId")
        return f"cell:{cell_id}" if cell_id else f"cell:{hash(cell.strip())}"

    def _keep(self, out: str | None) -> Any:
        """The setter of ``-o VAR`` for a live cell's rows (None without -o)."""
        if not out:
            return None
        return lambda frame: self.shell.user_ns.__setitem__(out, frame)

    def _chart_of(self, kind: str | None) -> Any:
        """How a live cell draws its chart (``--chart [KIND]``), or None."""
        if kind is None:
            return None
        return lambda result: self.session.chart(result, kind=kind or None)

    @line_magic
    def aiser(self, line: str) -> Any:
        """Connections, schema, snippets and history. Usage: %aiser COMMAND (connect, connections,
        use, disconnect, schema, panel, browse, snippets, history, sample, model, remember,
        feedback, memory, audit, mcp, tools, insights, cache, streams)"""
        args = _aiser_parser().parse_args(shlex.split(line))
        session = self.session
        if args.command in (None, "connections"):
            return session.sources.connections_frame()
        if args.command == "connect":
            target = self.shell.user_ns.get(args.target, args.target)
            from aiser_jupyter.sources.targets import is_frame

            if args.live:
                live = {"tables": args.tables.split(",")} if args.tables else {}
                live.update({"keep_slot": True} if args.keep_slot else {})
                live.update({"interval": args.interval} if args.interval else {})
                session.connect(args.target, name=args.name, live=True, **live)
                tables = ", ".join(sorted(session.streams()["table"]))
                print(f"Live: {tables} kept up to date in {session.settings.default_connection}")
                return None
            if is_frame(target):
                connection = session.connect(target, name=args.name or args.target)
            else:
                connection = session.connect(args.target, name=args.name)
            print(f"Connected: {connection.name} ({connection.kind}) {connection.display_url}")
            return None
        if args.command == "streams":
            return session.streams()
        if args.command == "use":
            session.sources.use(args.name)
            return None
        if args.command == "disconnect":
            session.sources.disconnect(args.name)
            return None
        if args.command == "schema":
            name, _, table = (args.what or "").partition(".")
            return session.sources.schema(name or None, table or None)
        if args.command == "remember":
            entry_id = session.agent.remember(" ".join(args.text))
            print(f"Remembered (#{entry_id}).")
            return None
        if args.command == "feedback":
            from aiser_jupyter.agent.answer import FEEDBACK_SAID

            good = args.verdict == "good"
            session.agent.feedback(good)
            print(FEEDBACK_SAID[good])
            return None
        if args.command == "memory":
            return self._memory(args)
        if args.command == "insights":
            target = line_target(args.target, self.shell.user_ns)
            return session.insights(target, measures=args.measure, by=args.by, limit=args.limit)
        if args.command == "mcp":
            return self._mcp(args)
        if args.command == "tools":
            return session.agent.tools_frame()
        if args.command == "live":
            if args.action == "stop":
                key = None if args.key in (None, "all") else args.key
                print(f"Stopped {session.live.stop(key)} live results and alerts' watches.")
                return None
            return session.live.frame()
        if args.command == "alert":
            return self._alert(args)
        if args.command == "status":
            print(session.privacy.status())
            return None
        if args.command == "audit" and args.action == "report":
            report = session.governance.audit_report(args.since or "30d")
            if args.html:
                print(f"Wrote the audit report to {report.save(args.html)}.")
            return report
        if args.command == "audit":
            if args.export:
                count = session.governance.export_audit(args.export, args.since)
                print(f"Wrote {count} audit entries to {args.export}.")
                return None
            return session.governance.audit(args.since, user=args.user)
        if args.command == "panel":
            from aiser_jupyter.widgets.connections import ConnectionPanel

            return ConnectionPanel(session)
        if args.command == "browse":
            from aiser_jupyter.widgets.schema import SchemaBrowser

            return SchemaBrowser(session)
        if args.command == "snippets":
            import pandas as pd

            return pd.DataFrame(list(session.snippets.items()), columns=["name", "sql"])
        if args.command == "cache":
            if args.action == "clear":
                print(f"Cleared {session.router.cache_clear()} cached results.")
            else:
                print(session.router.cache_stats())
            return None
        if args.command == "history":
            return session.history_frame()
        if args.command == "model":
            return self._model(args)
        if args.command == "sample":
            connection = session.sources.load_sample(args.seed)
            print(f"Sample tables customers, products, orders are in {connection.name}.")
            return None
        raise UsageError(f"Unknown command {args.command!r}")

    def _alert(self, args: argparse.Namespace) -> Any:
        alerts = self.session.alerts
        if args.action == "list":
            return alerts.frame()
        if args.action == "deliveries":
            return alerts.deliveries(args.name)
        if args.action == "check":
            return alerts.check([args.name] if args.name else None)
        if not args.name:
            raise UsageError(f"%aiser alert {args.action} NAME …")
        if args.action == "remove":
            alerts.remove(args.name)
            return None
        if not (args.source and args.condition):
            raise UsageError(
                "%aiser alert add NAME 'SQL or member' 'CONDITION' [--every 5m] "
                "[--notify webhook:URL] [--quiet 1h]"
            )
        return alerts.alert(
            args.name,
            args.source,
            args.condition,
            args.every,
            args.notify or ["notebook"],
            quiet=args.quiet,
        )

    def _model(self, args: argparse.Namespace) -> Any:
        session = self.session
        if args.action == "load":
            if not args.path:
                raise UsageError("%aiser model load PATH")
            model = session.load_model(args.path)
            print(f"Loaded {len(model.cubes)} cubes and {len(model.views)} views from {args.path}")
            return None
        if args.action == "auto":
            tables = args.tables.split(",") if args.tables else None
            text = session.semantic.auto_model(args.connection, tables, args.path)
            if args.path:
                print(f"Wrote {args.path}: edit it, then %aiser model load {args.path}")
                return None
            print(text)
            return None
        if session.model is None:
            raise UsageError("No semantic model loaded: %aiser model load PATH")
        from aiser_jupyter.semantic.meta import meta, summary

        return meta(session.model) if args.action == "meta" else summary(session.model)

    def _mcp(self, args: argparse.Namespace) -> Any:
        session = self.session
        if args.action == "serve":
            from aiser_jupyter.mcp.server import serve_http

            server = serve_http(session, port=args.port)
            print(f"Serving this notebook's data over MCP at {server.url}")
            return None
        if not args.name:
            raise UsageError(f"%aiser mcp {args.action} NAME …")
        if args.action == "add":
            if not args.target:
                raise UsageError("%aiser mcp add NAME URL, or %aiser mcp add NAME -- COMMAND ARGS")
            command, *rest = args.target
            tools = session.agent.mcp_add(args.name, command, args=rest, timeout=args.timeout)
            print(
                f"{args.name}: {len(tools)} tools ({', '.join(tools)}), "
                f"off until %aiser mcp enable {args.name}"
            )
            return None
        if args.action == "enable":
            enabled = session.agent.mcp_enable(args.name, tools=args.target or None)
            print(f"Enabled for the agent: {', '.join(enabled)}")
            return None
        if args.action == "disable":
            session.agent.mcp_disable(args.name, tools=args.target or None)
            return None
        session.agent.mcp_remove(args.name)
        return None

    def _memory(self, args: argparse.Namespace) -> Any:
        memory = self.session.agent.memory
        if args.action == "list":
            return memory.to_frame()
        if args.action == "search":
            import pandas as pd

            found = memory.search(args.arg or "")
            return pd.DataFrame([e.__dict__ for e in found])
        if args.action == "forget":
            if not (args.arg or "").isdigit():
                raise UsageError("%aiser memory forget ID (an id from %aiser memory list)")
            forgotten = memory.forget(int(args.arg))
            print(f"Forgot #{args.arg}." if forgotten else f"No memory #{args.arg}.")
            return None
        if args.action == "clear":
            print(f"Erased {memory.clear()} memories.")
            return None
        if not args.arg:
            raise UsageError("%aiser memory export PATH")
        print(f"Wrote {memory.export(args.arg)} memories to {args.arg}.")
        return None

    @line_cell_magic
    def ask(self, line: str, cell: str | None = None) -> Any:
        """Answer a business question from the data (the cell, or the rest of the line).

        %%ask [--model M] [--offline] [--no-run] [--new] [--no-cell] [-o VAR]
        """
        if cell is None:  # %ask [OPTIONS] QUESTION: options first, the question as typed
            words = line.split()
            flags: list[str] = []
            while words and words[0].startswith("-"):
                flags.append(words.pop(0))
                if flags[-1] in ("--model", "-m", "--out", "-o") and words:
                    flags.append(words.pop(0))
            args, question = _ask_parser().parse_args(flags), " ".join(words)
        else:
            args, question = _ask_parser().parse_args(shlex.split(line)), cell
        answer = self.session.ask(
            question, args.model, offline=args.offline, run=not args.no_run, new=args.new
        )
        if args.out:
            self.shell.user_ns[args.out] = answer
        if answer.cell and not args.no_cell:
            from aiser_jupyter.sidebar import insert_cell

            if not insert_cell(answer.cell):  # no JupyterLab sidebar: the next cell instead
                self.shell.set_next_input(answer.cell)
        return answer

    @cell_magic
    def query(self, line: str, cell: str) -> Any:
        """Answer a Cube REST query (JSON or YAML) through the semantic model.

        %%query [CONNECTION] [-o VAR] [--sql] [--live [INTERVAL]]
        """
        args = _query_parser().parse_args(shlex.split(line))
        if not cell.strip():
            raise UsageError("%%query needs a query in the cell (JSON or YAML)")
        if args.sql:
            print(self.session.semantic.query_sql(cell, args.connection))
            return None
        key = self._cell_key(cell)
        self.session.live.stop(key)
        if args.live is not None:
            from aiser_jupyter.widgets.live import live_cell

            session = self.session
            return live_cell(
                session.live,
                key,
                lambda: session.query(cell, args.connection, rollups=False),
                session.semantic.query_sql(cell, args.connection),
                every=args.live,
                out=self._keep(args.out),
            )
        frame = self.session.query(cell, args.connection).df
        if args.out:
            self.shell.user_ns[args.out] = frame
        return frame


def register(shell: Any) -> None:
    shell.register_magics(AiserMagics)


def line_target(text: str | None, namespace: Mapping[str, Any]) -> Any:
    """What ``%aiser insights TARGET`` is about: a variable of the notebook (a Result, a
    DataFrame, a Cube query dict), a Cube query written as JSON, or with no TARGET the
    last output (``_``)."""
    import json

    from aiser_jupyter.analysis.insight import InsightsError

    text = (text or "").strip()
    if not text:
        if namespace.get("_") is None:
            raise InsightsError("Nothing to look at: run a query first, or name a variable")
        return namespace["_"]
    if text.isidentifier():
        if text not in namespace:
            raise InsightsError(f"No variable named {text!r} in the notebook")
        return namespace[text]
    try:
        query = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InsightsError(
            f"Expected a variable name or a Cube query as JSON, got {text[:60]!r} ({exc.msg})"
        ) from None
    if not isinstance(query, dict):
        raise InsightsError('A Cube query is a JSON object: {"measures": [...], ...}')
    return query
