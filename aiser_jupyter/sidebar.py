"""The kernel side of the JupyterLab sidebar: a comm that mirrors the Session as JSON.

The sidebar (``labextension/``) opens a comm with target ``aiser_sidebar``; the kernel
answers with the Session's connections, schema, semantic model, history and last answer
(its status, text, suggestions and whether it takes thumbs up or down), then pushes
only what changed (``Session.on_change``, never polling). Changes made while a cell runs
are sent once, when it ends, so a loop of queries is one update, not thousands. The same
comm carries requests from the panel (test or remove a connection, feedback on the last
answer) and cells from the kernel to the notebook (``insert_cell``, which ``%%ask`` uses).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiser_jupyter.__about__ import __version__
from aiser_jupyter.errors import AiserError

if TYPE_CHECKING:
    from aiser_jupyter.history import HistoryEntry
    from aiser_jupyter.sessions import Session

TARGET = "aiser_sidebar"
HISTORY_LIMIT = 200
"""The newest history entries the panel is sent (the kernel keeps them all)."""
PLAIN_SCHEMAS = ("", "main", "public")


def connections_payload(session: Session) -> list[dict[str, Any]]:
    """Each connection's name, kind, redacted URL and whether queries use it by default."""
    current = session.sources.current or session.settings.default_connection
    return [
        {"name": c.name, "kind": c.kind, "url": c.display_url, "current": c.name == current}
        for c in session.sources.connections.values()
    ]


def schema_payload(session: Session, name: str) -> dict[str, Any]:
    """One connection's tables and columns with types, and the SQL name of each table in the
    connection's dialect (quoted where it must be); a failure is reported, not raised."""
    from sqlglot import exp

    connection = session.sources.connections[name]
    try:
        rows = connection.columns().to_pylist()
    except AiserError as exc:
        return {"connection": name, "tables": [], "error": str(exc)}
    tables: dict[tuple[str, str], list[dict[str, str]]] = {}
    for row in rows:
        key = (row["schema"] or "", row["table"])
        tables.setdefault(key, []).append({"name": row["column"], "type": str(row["type"])})
    dialect = connection.engine.dialect
    return {
        "connection": name,
        "tables": [
            {
                "schema": schema,
                "name": table,
                "sql": exp.table_(table, db=None if schema in PLAIN_SCHEMAS else schema).sql(
                    dialect
                ),
                "columns": columns,
            }
            for (schema, table), columns in sorted(tables.items())
        ],
    }


def model_payload(session: Session) -> dict[str, Any] | None:
    """The loaded model in Cube's ``/v1/meta`` shape (cubes and views with their measures,
    dimensions and segments, titles and descriptions), or None."""
    if session.model is None:
        return None
    from aiser_jupyter.semantic.meta import meta

    return {"source": str(session.model.source), **meta(session.model)}


def history_payload(session: Session) -> list[dict[str, Any]]:
    """The newest runs of %%sql, %%query and %%ask, oldest first, secrets already hidden."""
    return [entry_payload(e) for e in session.history[-HISTORY_LIMIT:]]


def answer_payload(session: Session) -> dict[str, Any] | None:
    """The last answer as the Ask box shows it (no rows: they are in the notebook), or None."""
    answer = session.last_answer
    if answer is None:
        return None
    return {
        "question": answer.question,
        "status": answer.status,
        "text": answer.text,
        "suggestions": list(answer.suggestions),
        "rateable": answer.rateable,
        "verdict": answer.verdict,
    }


def entry_payload(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "at": entry.at.isoformat(timespec="seconds"),
        "kind": entry.kind,
        "connection": entry.connection,
        "engine": entry.engine,
        "sql": entry.sql,
        "rows": entry.rows,
        "elapsed": round(entry.elapsed, 4),
        "error": entry.error,
    }


def changes_schema(session: Session, entry: HistoryEntry) -> bool:
    """Whether a history entry may have created, dropped or altered tables: anything but
    queries (a text that does not parse, e.g. a template, counts as a change)."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    if entry.kind != "sql" or entry.connection not in session.sources.connections:
        return False
    dialect = session.sources.connections[entry.connection].engine.dialect
    try:
        statements = sqlglot.parse(entry.sql, read=dialect)
    except SqlglotError:
        return True
    return any(s is not None and not isinstance(s, exp.Query) for s in statements)


class Sidebar:
    """The comms of the sidebars attached to this kernel, and the Session they mirror."""

    def __init__(self, shell: Any):
        self.shell = shell
        self.comms: dict[str, Any] = {}
        self._session: Session | None = None
        self._unsubscribe: Any = None
        self._executing = False
        self._pending: set[str] = set()
        self._stale_schemas: set[str] = set()
        self._cell_id: str | None = None
        shell.events.register("pre_run_cell", self._pre_run_cell)
        shell.events.register("post_run_cell", self._post_run_cell)

    # -- comms -------------------------------------------------------------------------

    def attach(self, comm: Any, _open_msg: Any = None) -> None:
        """A front end opened a comm: it is attached; send it everything."""
        self.watch(comm)
        self._confirm(comm)
        comm.send(self.state())

    def watch(self, comm: Any) -> None:
        """Handle a comm's requests; a comm the kernel opened counts as attached only once
        its front end speaks (no sidebar may be listening, e.g. under nbclient)."""
        comm.on_msg(lambda msg: self.handle(comm, msg["content"]["data"]))
        comm.on_close(lambda _msg: self.detach(comm))

    def _confirm(self, comm: Any) -> None:
        self.comms[comm.comm_id] = comm
        self._subscribe()

    def detach(self, comm: Any) -> None:
        self.comms.pop(comm.comm_id, None)
        if not self.comms and self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = self._session = None

    def _subscribe(self) -> None:
        from aiser_jupyter.sessions import get_session

        session = get_session()
        if session is not self._session:
            if self._unsubscribe is not None:
                self._unsubscribe()
            self._session = session
            self._unsubscribe = session.on_change(self.changed)

    @property
    def session(self) -> Session:
        from aiser_jupyter.sessions import get_session

        return self._session or get_session()

    def send(self, message: dict[str, Any]) -> bool:
        """Send to every attached front end; False when none is attached."""
        for comm in list(self.comms.values()):
            comm.send(message)
        return bool(self.comms)

    def state(self) -> dict[str, Any]:
        session = self.session
        return {
            "type": "state",
            "version": __version__,
            "connections": connections_payload(session),
            "schema": [schema_payload(session, name) for name in session.sources.connections],
            "model": model_payload(session),
            "history": history_payload(session),
            "answer": answer_payload(session),
        }

    # -- changes -----------------------------------------------------------------------

    def changed(self, what: str) -> None:
        """A Session listener: remember what changed; send it now, or when the cell ends.
        Rows changing in a table (``data:…``, from live streams' threads) change nothing the
        panel shows."""
        if what.startswith("data:"):
            return
        if what == "history" and self.session.history:
            entry = self.session.history[-1]
            if changes_schema(self.session, entry):
                self._stale_schemas.add(entry.connection)
        self._pending.add(what)
        if not self._executing:
            self.flush()

    def flush(self) -> None:
        pending, self._pending = self._pending, set()
        stale, self._stale_schemas = self._stale_schemas, set()
        if not pending or not self.comms:
            return
        session = self.session
        update: dict[str, Any] = {"type": "update"}
        if "connections" in pending:
            update["connections"] = connections_payload(session)
            stale = set(session.sources.connections)  # the panel drops the schema of removed ones
        if stale:
            update["schema"] = [
                schema_payload(session, n)
                for n in sorted(stale)
                if n in session.sources.connections
            ]
        if "model" in pending:
            update["model"] = model_payload(session)
        if "history" in pending:
            update["history"] = history_payload(session)
        if "answer" in pending:
            update["answer"] = answer_payload(session)
        self.send(update)

    def _pre_run_cell(self, info: Any) -> None:
        self._executing = True
        self._cell_id = getattr(info, "cell_id", None)

    def _post_run_cell(self, _result: Any) -> None:
        self._executing = False
        self._cell_id = None
        self.flush()

    # -- requests from the panel -------------------------------------------------------

    def handle(self, comm: Any, data: dict[str, Any]) -> None:
        """Answer one request; a failure is the reply's message, and nothing is lost."""
        if comm.comm_id not in self.comms:
            self._confirm(comm)
        action, request = data.get("action"), data.get("id")
        reply: dict[str, Any] = {"type": "reply", "id": request, "action": action}
        try:
            if action == "refresh":
                comm.send(self.state())
                reply["message"] = "refreshed"
            elif action == "test":
                reply["message"] = self.test(str(data.get("name")))
            elif action == "remove":
                name = str(data.get("name"))
                self.session.sources.disconnect(name)
                reply["message"] = f"removed {name}"
            elif action == "feedback":
                from aiser_jupyter.agent.answer import FEEDBACK_SAID

                good = data.get("good") is True
                self.session.agent.feedback(good)
                reply["message"] = FEEDBACK_SAID[good]
            else:
                raise AiserError(f"Unknown sidebar request {action!r}")
            reply["ok"] = True
        except AiserError as exc:
            from aiser_jupyter.security.secrets import redact

            reply |= {"ok": False, "message": redact(f"{type(exc).__name__}: {exc}")}
        reply["name"] = data.get("name")
        comm.send(reply)

    def test(self, name: str) -> str:
        """Run ``SELECT 1`` on a live connection: a one-line verdict, or the engine's error."""
        import time

        connection = self.session.connection(name)
        started = time.perf_counter()
        connection.engine.execute("SELECT 1")
        elapsed = (time.perf_counter() - started) * 1000
        return f"OK: {connection.kind} answered in {elapsed:.0f} ms"

    def insert_cell(self, text: str) -> bool:
        """Ask the front ends to add a cell below the one running now (or the active one)."""
        return self.send({"type": "insert_cell", "text": text, "cell_id": self._cell_id})


_sidebar: Sidebar | None = None


def register_sidebar(shell: Any) -> Sidebar | None:
    """Register the comm target in a kernel, and open a comm to any sidebar already watching
    it (so the panel leaves its "load the extension" state); once per kernel. Without a
    kernel (plain IPython), nothing happens and None is returned."""
    global _sidebar
    kernel = getattr(shell, "kernel", None)
    if kernel is None or getattr(kernel, "comm_manager", None) is None:
        return None
    if _sidebar is not None and _sidebar.shell is shell:
        return _sidebar  # registered already (a second %load_ext, %reload_ext)
    from comm import create_comm

    _sidebar = Sidebar(shell)
    kernel.comm_manager.register_target(TARGET, _sidebar.attach)
    _sidebar.watch(create_comm(target_name=TARGET, data={"type": "hello"}))
    return _sidebar


def insert_cell(text: str) -> bool:
    """Insert `text` as a new cell below the running one in JupyterLab, through the sidebar's
    comm; False when no sidebar front end is attached (use ``set_next_input`` then)."""
    return _sidebar is not None and _sidebar.insert_cell(text)
