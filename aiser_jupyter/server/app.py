"""The HTTP API: Cube's REST endpoints (``/cubejs-api/v1/load``, ``/sql``, ``/meta``) over Sessions.

Requests are authenticated (auth.py), answered by Sessions in worker threads through a
result cache (jobs.py) and shaped as Cube answers them (cube.py), so that Cube clients and
dashboards read live data from a notebook's semantic model.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from aiser_jupyter.errors import AiserError
from aiser_jupyter.server.auth import Verifier, context_key
from aiser_jupyter.server.cube import (
    REGULAR,
    ApiError,
    Part,
    dumps,
    multi_envelope,
    parse_query_param,
    pivot_query,
    result_object,
    split,
)
from aiser_jupyter.server.jobs import Answers, SessionPool
from aiser_jupyter.server.metrics import Metrics, MetricsMiddleware
from aiser_jupyter.server.shared import Entry
from aiser_jupyter.sources.targets import split_named

if TYPE_CHECKING:
    from fastapi import FastAPI, Request, Response

    from aiser_jupyter.result import Result
    from aiser_jupyter.security.context import SecurityContext
    from aiser_jupyter.semantic.model import SemanticModel
    from aiser_jupyter.server.fast import FastLoad
    from aiser_jupyter.sessions import Session

log = logging.getLogger("aiser_jupyter.server")

HISTORY_KEPT = 1000
"""Entries a serving Session keeps in its history (a server runs for days)."""

META_KEPT = 256
"""Requesters whose ``/v1/meta`` is kept serialized."""

TABLES_KEPT = 4096
"""Queries (by requester) whose tables are kept, to stamp their answers with the tables'
versions."""

NO_CACHE = frozenset({"no-cache", "must-revalidate"})
"""Cube's ``cache`` values that skip the cached answer."""


def create_app(
    source: Session | str | os.PathLike[str] | Callable[[], Session],
    *,
    secret: str | None,
    connections: Sequence[str] = (),
    sample: bool = False,
    workers: int = 1,
    cache_size: int = 1024,
    cache_ttl: float = 60.0,
    continue_wait: float = 5.0,
    cors_origins: Sequence[str] = ("*",),
    cache_url: str | None = None,
) -> FastAPI:
    """A FastAPI app speaking Cube's REST API.

    `source` is a Session (served as it is, by one worker thread), a model folder or file
    (each of `workers` Sessions connects `connections`, ``NAME=URL`` or ``URL``, loads the
    sample data when `sample` is set, loads the model and builds its rollups), or a function
    that makes a ready Session. `secret` signs the clients' HS256 JWTs; None: no
    authentication. Answers are cached `cache_ttl` seconds (0: never); a query still running
    after `continue_wait` seconds answers ``{"error": "Continue wait"}`` and runs on.
    Pages from `cors_origins` (exported dashboards: any, as Cube allows by default) may call
    it from a browser; tokens travel in headers, never in cookies. `cache_url`
    (``redis://HOST:PORT/DB``) shares answers and running queries with every process using
    the same Redis; without it each process keeps its own.
    """
    from aiser_jupyter.server.fast import CubeApi, FastLoad

    if workers < 1:
        raise ApiError(f"workers must be at least 1, got {workers}")
    shared = _is_session(source)
    if shared:
        sessions = [source]
    else:
        factory = source if callable(source) else partial(open_session, source, connections, sample)
        sessions = []
        try:
            for _ in range(workers):
                sessions.append(factory())
        except BaseException:
            for session in sessions:
                session.close()
            raise
    server = Server(
        SessionPool(sessions, owned=not shared),  # type: ignore[arg-type]
        secret,
        cache_size=cache_size,
        cache_ttl=cache_ttl,
        continue_wait=continue_wait,
        cache_url=cache_url,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        answers = server.answers

        def heard(what: str) -> None:
            """Runs in whichever thread changed something: hand it to the event loop."""
            if what == "model" and shared:
                loop.call_soon_threadsafe(server.model_changed)
            elif what.startswith("data:"):
                loop.call_soon_threadsafe(answers.data_changed, what[5:].lower())

        stops = [session.on_change(heard) for session in sessions]  # type: ignore[union-attr]
        listening = None
        if answers.shared is not None:
            listening = asyncio.ensure_future(answers.shared.listen(answers.heard))
        if not shared:
            # A server process: what is loaded by now (libraries, the model, the sample)
            # lives as long as it does, out of the collector's sight, and the young
            # generation is collected less often (a request's garbage is freed by reference
            # counting): collections stay rare and short. A notebook's kernel is left alone.
            gc.collect()
            gc.freeze()
            gc.set_threshold(100_000, 50, 100)
        yield
        for stop in stops:
            stop()
        if listening is not None:
            listening.cancel()
            await answers.shared.close()  # type: ignore[union-attr]
        server.pool.close()

    app = CubeApi(title="aiser-jupyter semantic API", lifespan=lifespan, docs_url=None)
    app.state.aiser = server
    app.fast = server.fast = FastLoad(
        server.verifier,
        server.answers,
        server.metrics,
        lambda: server.scope({}),
        cors=cors_origins,
    )
    _routes(app, server)
    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "x-cube-authorization", "Content-Type", "x-request-id"],
        )
    app.add_middleware(MetricsMiddleware, metrics=server.metrics)
    return app


def open_session(
    model: str | os.PathLike[str], connections: Sequence[str], sample: bool
) -> Session:
    """A Session for serving `model`: its connections, the sample data if asked, rollups built."""
    from aiser_jupyter.sessions import Session

    session = Session()
    try:
        if sample:
            session.sources.load_sample()
        for target in connections:
            name, url = split_named(target)
            session.connect(url, name=name)
        session.load_model(model)
        session.semantic.refresh_pre_aggregations(force=False)
    except BaseException:
        session.close()
        raise
    return session


class Server:
    """What the routes share: the Sessions' pool, the answers, the metrics, the secret."""

    def __init__(
        self,
        pool: SessionPool,
        secret: str | None,
        *,
        cache_size: int,
        cache_ttl: float,
        continue_wait: float,
        cache_url: str | None = None,
    ):
        from cachetools import LRUCache

        self.pool = pool
        self.verifier = Verifier(secret)
        self.metrics = Metrics()
        shared = None
        if cache_url:
            from aiser_jupyter.server.shared import SharedCache

            shared = SharedCache(cache_url, self.metrics, ttl=cache_ttl)
        self.answers = Answers(
            pool,
            self.metrics,
            cache_size=cache_size,
            cache_ttl=cache_ttl,
            continue_wait=continue_wait,
            shared=shared,
        )
        self.fast: FastLoad | None = None
        self._meta_model: SemanticModel | None = None
        self._meta: LRUCache = LRUCache(META_KEPT)
        self._tables: LRUCache = LRUCache(TABLES_KEPT)
        self.model_changed()

    def model_changed(self) -> None:
        """A new model: forget its answers; the shared tier keys by the model's fingerprint,
        so that processes serving another model (a rolling deploy) never share answers."""
        self.answers.clear()
        self._tables.clear()
        if self.answers.shared is not None:
            self.answers.shared.prefix = f"aiser:{fingerprint(self.pool.sessions[0].model)}:"

    def authenticate(self, request: Request) -> tuple[str, SecurityContext | None]:
        """Who asks: the cache's part of a key for the requester and the context its queries
        run under (the token's, verified once per token; with no secret configured the
        Session's own, ``set_context``)."""
        if self.verifier.secret is None:
            return self.scope({}), None
        headers = request.headers
        header = headers.get("x-cube-authorization") or headers.get("authorization")
        verified = self.verifier.verify(header)
        return verified.key, verified.context

    def scope(self, claims: dict[str, Any]) -> str:
        """Who a cached answer is for: the token's requester, or with no secret the Session's
        own context (``set_context`` in the notebook changes it)."""
        if self.verifier.secret is None:
            own = getattr(self.pool.sessions[0], "security_context", None)
            return context_key({"session": repr(own)})
        return context_key(claims)

    def answer(self, part: Part, context: SecurityContext | None, session: Session) -> Entry:
        """One query's Cube result object, serialized, with the tables it read and their
        versions before it ran (in a worker thread)."""
        started = time.perf_counter()
        versions = dict(self.answers.versions)
        result = run_query(session, part.query, context)
        pre = result.pre_aggregation is not None
        # Rollups live in the pre-aggregation store, a DuckDB of its own.
        engine = "duckdb" if pre else session.connection(result.connection).kind
        self.metrics.query_done(engine, pre, time.perf_counter() - started)
        if len(session.history) > 2 * HISTORY_KEPT:
            del session.history[:-HISTORY_KEPT]
        tables = self.tables(session, part, context)
        stamp = tuple(versions.get(table, "") for table in tables)
        return dumps(result_object(result, part, engine)), tables, stamp

    def tables(
        self, session: Session, part: Part, context: SecurityContext | None
    ) -> tuple[str, ...]:
        """The tables `part` reads on its connection (as ``name`` and ``schema.name``): the
        changes that make its cached answer stale. Found once per query and requester."""
        key = (part.key(), None if context is None else repr(context))
        found = self._tables.get(key)
        if found is None:
            connection, text = session.semantic.compile_query(part.query, context=context)
            dialect = session.connection(connection).engine.dialect
            found = self._tables[key] = read_tables(text, dialect)
        return found

    def meta(self, key: str, context: SecurityContext | None) -> bytes:
        """The model in Cube's ``/v1/meta`` shape as this requester may see it (members the
        access policies hide are left out), serialized once per model and requester."""
        model = self.pool.sessions[0].model
        if model is None:
            raise ApiError("No semantic model is loaded", 404)
        if self._meta_model is not model:
            self._meta.clear()
            self._meta_model = model
        if key not in self._meta:
            self._meta[key] = dumps(visible_meta(model, context))
        return self._meta[key]


def read_tables(sql: str, dialect: str) -> tuple[str, ...]:
    """The lowercase names of the tables `sql` reads, bare and schema-qualified."""
    import sqlglot

    from aiser_jupyter.engines.duckdb import source_tables

    names: set[str] = set()
    for statement in sqlglot.parse(sql, read=dialect):
        if statement is None:
            continue
        for table in source_tables(statement):
            names.add(table.name.lower())
            if table.db:
                names.add(f"{table.db}.{table.name}".lower())
    return tuple(sorted(names))


def fingerprint(model: SemanticModel | None) -> str:
    """The same text for the same model in every process (its cubes, views and policies)."""
    from aiser_jupyter.engines.transpile import digest

    if model is None:
        return "none"
    return digest(repr(model.cubes) + repr(model.views) + repr(model.policies))


def visible_meta(model: SemanticModel, context: SecurityContext | None) -> dict[str, Any]:
    """Cube's meta of `model`, less what `context` may not query (cubes left empty go)."""
    from aiser_jupyter.semantic.meta import meta
    from aiser_jupyter.semantic.policies import visible

    cubes = []
    for cube in meta(model)["cubes"]:
        kept = {
            kind: [m for m in cube[kind] if visible(model, context, m["name"])]
            for kind in ("measures", "dimensions", "segments")
        }
        if any(kept.values()):
            cubes.append({**cube, **kept})
    return {"cubes": cubes}


def run_query(session: Session, query: dict[str, Any], context: SecurityContext | None) -> Result:
    """The one call that runs a request's query, as its requester: the model's access
    policies filter rows, hide members and mask personal data."""
    return session.query(query, context=context)


def sql_object(
    session: Session, query: dict[str, Any], context: SecurityContext | None
) -> dict[str, Any]:
    """Cube's ``/v1/sql`` answer for one query: the SQL it runs (on the raw tables) for this
    requester, policies applied."""
    from aiser_jupyter.semantic.query import Query

    connection, text = session.semantic.compile_query(query, context=context)
    order = {member: "desc" if desc else "asc" for member, desc in Query.parse(query).order}
    return {
        "sql": {
            "sql": [text, []],
            "order": order,
            "dataSource": connection,
            "external": False,
            "preAggregations": [],
        },
        "dataSource": connection,
    }


def _routes(app: FastAPI, server: Server) -> None:
    from fastapi import Response
    from fastapi.responses import JSONResponse

    json_type = "application/json"

    async def load(request: Request) -> Response:
        scope, context = server.authenticate(request)
        params = await _params(request)
        query_type, parts = split(parse_query_param(params.get("query")))
        multi = params.get("queryType") == "multi"
        if query_type != REGULAR and not multi:
            raise ApiError(
                f"'{query_type}' query type is not supported by the client. "
                "Please update the client."
            )
        use_cache = params.get("cache") not in NO_CACHE
        if use_cache and len(parts) == 1 and not multi and request.method == "GET":
            server.fast.learn(request.scope["query_string"], parts[0].key())  # type: ignore[union-attr]
        asks = [
            server.answers.get(
                part.key() + scope, partial(server.answer, part, context), use_cache=use_cache
            )
            for part in parts
        ]
        # One query (the common case) is awaited as it is: no task to schedule.
        answers = [await asks[0]] if len(asks) == 1 else await asyncio.gather(*asks)
        if any(answer is None for answer in answers):
            return JSONResponse({"error": "Continue wait"})
        if multi:
            body = multi_envelope(query_type, answers, pivot_query(query_type, parts))
        else:
            body = answers[0]
        return Response(body, media_type=json_type)

    async def sql(request: Request) -> Response:
        _, context = server.authenticate(request)
        params = await _params(request)
        query_type, parts = split(parse_query_param(params.get("query")))
        objects = await server.pool.run(lambda s: [sql_object(s, p.query, context) for p in parts])
        return Response(
            dumps(objects[0] if query_type == REGULAR else objects), media_type=json_type
        )

    async def meta(request: Request) -> Response:
        scope, context = server.authenticate(request)
        return Response(server.meta(scope, context), media_type=json_type)

    async def metrics(request: Request) -> Response:
        body, content_type = server.metrics.exposition()
        return Response(body, media_type=content_type)

    async def alive(request: Request) -> Response:
        return JSONResponse({"health": "HEALTH"})

    async def refused(request: Request, exc: Exception) -> Response:
        from aiser_jupyter.security.context import AccessDenied
        from aiser_jupyter.security.secrets import redact

        status = (
            exc.status
            if isinstance(exc, ApiError)
            else 403
            if isinstance(exc, AccessDenied)
            else 400
        )
        return JSONResponse({"error": redact(str(exc)), "type": type(exc).__name__}, status)

    async def failed(request: Request, exc: Exception) -> Response:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"error": "Internal Server Error"}, 500)

    base = "/cubejs-api/v1"
    app.add_route(f"{base}/load", load, methods=["GET", "POST"])
    app.add_route(f"{base}/sql", sql, methods=["GET", "POST"])
    app.add_route(f"{base}/meta", meta, methods=["GET"])
    app.add_route("/metrics", metrics, methods=["GET"])
    app.add_route("/livez", alive, methods=["GET"])
    app.add_route("/readyz", alive, methods=["GET"])
    app.add_exception_handler(AiserError, refused)
    app.add_exception_handler(Exception, failed)


async def _params(request: Any) -> dict[str, Any]:
    """A GET's query string, or a POST's JSON body."""
    if request.method == "GET":
        return dict(request.query_params)
    try:
        body = await request.json()
    except ValueError:
        raise ApiError("The request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError("The request body must be a JSON object with a 'query'")
    return body


def _is_session(source: Any) -> bool:
    from aiser_jupyter.sessions import Session

    return isinstance(source, Session)
