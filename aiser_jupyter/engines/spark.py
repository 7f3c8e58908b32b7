"""Apache Spark, for data that outgrows one machine (extra ``spark``).

A local session (``local[*]``) by default, a standalone/YARN/Kubernetes master URL, or a
cluster through Spark Connect (``sc://host:15002``). Results come back as Arrow.

Every statement runs on a worker thread tagged with a job group (classic Spark) or an
operation tag (Spark Connect), while the calling thread waits. So the kernel's interrupt
(KeyboardInterrupt in the calling thread) and the time limit can cancel exactly that
query's jobs, and the Py4J/gRPC connection is never cut mid-answer. Progress (stages and
tasks) is polled from Spark's status tracker, or pushed by Spark Connect, and reported
once a query has run for about a second.

Iceberg and Delta tables reach Spark as Arrow through `sources.lakes` (pyiceberg,
deltalake): the Spark runtimes for those formats would be jars fetched from Maven at run
time, which this package never does.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiser_jupyter.engines.base import Params, TimeLimit, timed_out
from aiser_jupyter.engines.progress import ProgressCallback, progress_callback
from aiser_jupyter.errors import ConnectionFailed, QueryError, QueryInterrupted
from aiser_jupyter.security.secrets import redact, redact_url

if TYPE_CHECKING:
    import pyarrow as pa

DEFAULT_CONFIG = {
    "spark.ui.enabled": "false",
    # Our own progress line replaces Spark's console bar, which would garble cell output.
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}
LOCAL_CONFIG = {
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
}
FILE_FORMATS = {".parquet": "parquet", ".csv": "csv", ".tsv": "csv", ".orc": "orc", ".json": "json"}
INTERRUPTED = "Query interrupted; Spark cancelled its jobs."
CONNECT_PORT = 15002
POLL = 0.25

_lock = threading.Lock()
_users: dict[int, int] = {}
"""How many engines share each SparkSession (by id): Spark allows one per process."""


@dataclass(frozen=True)
class SparkProgress:
    """Where a running query is: its stages and tasks so far."""

    stages_done: int
    stages: int
    tasks_done: int
    tasks: int
    seconds: float

    def __str__(self) -> str:
        share = f" ({100 * self.tasks_done // self.tasks}%)" if self.tasks else ""
        return (
            f"Spark: stage {self.stages_done}/{self.stages}, "
            f"tasks {self.tasks_done}/{self.tasks}{share}, {self.seconds:.0f} s"
        )


def master_of(url: str) -> tuple[str, bool]:
    """What `url` asks for: (master URL or Connect URL, whether it is Spark Connect).

    ``sc://…`` is Spark Connect; ``spark://local``, ``spark://local[4]`` or ``spark:`` mean
    a local session; other ``spark://host:7077`` URLs, ``local[…]``, ``yarn`` and
    ``k8s://…`` are master URLs.
    """
    if url.startswith("sc://"):
        return url, True
    if url.startswith("spark:"):
        rest = url.removeprefix("spark:").removeprefix("//").rstrip("/")
        if rest in {"", "local"}:
            return "local[*]", False
        if rest.startswith("local["):
            return rest, False
    return url, False


class SparkEngine:
    kind = "spark"
    dialect = "spark"
    paramstyle = "named"

    def __init__(
        self,
        url: str = "local[*]",
        *,
        config: Mapping[str, str] | None = None,
        app_name: str = "aiser-jupyter",
        progress: bool | ProgressCallback | None = True,
    ):
        """Start (or join) the kernel's Spark session; `config` is Spark settings, `progress`
        True for a progress line, a callable to receive `SparkProgress` reports, or False."""
        self.url = url
        self.master, self.connect = master_of(url)
        self.progress = progress
        # A Connect server's own settings are not the client's to change.
        defaults = {} if self.connect else DEFAULT_CONFIG
        self.spark = self._start({**defaults, **(config or {})}, app_name)
        with _lock:
            _users[id(self.spark)] = _users.get(id(self.spark), 0) + 1
        self._reports: dict[str, tuple[Callable[[Any], object], float]] = {}
        if self.connect:
            self.spark.registerProgressHandler(self._connect_progress)

    def _start(self, config: dict[str, str], app_name: str) -> Any:
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise ConnectionFailed(
                "Spark needs pyspark: pip install 'aiser-jupyter[spark]'"
            ) from None
        builder = SparkSession.builder.appName(app_name)
        if self.connect:
            require_reachable(self.master)
            try:
                import pyspark.sql.connect.session  # noqa: F401 - checks Connect's own needs
            except ImportError as exc:
                raise ConnectionFailed(
                    f"Spark Connect needs pyspark[connect] ({exc}): pip install 'pyspark[connect]'"
                ) from None
            builder = builder.remote(self.master)
        else:
            require_java()
            builder = builder.master(self.master)
            if self.master.startswith("local"):
                config = {**LOCAL_CONFIG, **config}
                os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        for key, value in config.items():
            builder = builder.config(key, value)
        # pyspark logs every failed query's message and JVM stack; the user reads our error.
        for logger in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
            logging.getLogger(logger).setLevel(logging.CRITICAL)
        try:
            spark = builder.getOrCreate()
        except Exception as exc:
            raise ConnectionFailed(
                f"Could not start Spark at {redact_url(self.url)}: {first_line(exc)}"
            ) from None
        if not self.connect:
            running = spark.sparkContext.master
            if running != self.master and not self.master.startswith("local["):
                raise ConnectionFailed(
                    f"This kernel already runs Spark at {running}; Spark allows one session "
                    "per process (disconnect it first)"
                )
            spark.sparkContext.setLogLevel("ERROR")
        return spark

    # -- queries -----------------------------------------------------------------

    def execute(self, sql: str, params: Params = None, limit: int | None = None) -> pa.Table | None:
        def build() -> pa.Table | None:
            frame = self.spark.sql(sql, args=params or None)
            if not frame.columns:  # a command, already run by spark.sql
                return None
            return to_arrow(frame if limit is None else frame.limit(limit))

        return self._run(build, sql)

    def execute_read_only(
        self, sql: str, params: Params = None, *, limit: int, timeout: float
    ) -> pa.Table:
        """Run one guarded query under a row cap and a time limit.

        Spark has no read-only transaction, so the second wall is its own parser: the
        checked statement is rewritten (by sqlglot) as ``SELECT * FROM (query) LIMIT n``,
        and Spark's grammar admits no command in a subquery. The cap runs in Spark too.
        """
        from sqlglot import exp

        from aiser_jupyter.security.guard import QUERIES, check_sql

        tree = check_sql(sql, self.dialect)
        if not isinstance(tree, QUERIES):
            raise QueryError("Only a query can run read-only on Spark.", sql=sql)
        wrapped = exp.select("*").from_(tree.subquery("aiser_query")).limit(limit)
        text = wrapped.sql(dialect=self.dialect)

        def build() -> pa.Table:
            return to_arrow(self.spark.sql(text, args=params or None))

        table = self._run(build, sql, timeout=timeout)
        assert table is not None
        return table

    def _run(
        self, build: Callable[[], pa.Table | None], sql: str, timeout: float | None = None
    ) -> pa.Table | None:
        """`build` on a tagged worker thread; an interrupt or the time limit cancels its jobs."""
        tag = f"aiser-{uuid.uuid4().hex[:12]}"
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                with self._tagged(tag):
                    box["table"] = build()
            except BaseException as exc:  # handed to the calling thread
                box["error"] = exc

        worker = threading.Thread(target=work, name=f"spark-{tag}", daemon=True)
        clock = TimeLimit(timeout, lambda: self._cancel(tag)) if timeout else None
        started = time.monotonic()
        worker.start()
        with self._progress(tag, started) as report:
            try:
                with clock or contextlib.nullcontext():
                    while worker.is_alive():
                        worker.join(POLL)
                        report()
            except KeyboardInterrupt:
                self._cancel(tag)
                worker.join()
                raise QueryInterrupted(INTERRUPTED, sql=sql) from None
        if "error" in box:
            if clock is not None and clock.fired:
                raise timed_out(timeout or 0, sql) from None
            raise spark_error(box["error"], sql)
        return box["table"]

    @contextlib.contextmanager
    def _tagged(self, tag: str) -> Iterator[None]:
        """Mark the jobs this thread starts, so that they alone can be cancelled."""
        if self.connect:
            self.spark.addTag(tag)
            try:
                yield
            finally:
                self.spark.removeTag(tag)
            return
        context = self.spark.sparkContext
        context.setJobGroup(tag, "aiser-jupyter query", interruptOnCancel=True)
        try:
            yield
        finally:
            context.setLocalProperty("spark.jobGroup.id", None)

    def _cancel(self, tag: str) -> None:
        if self.connect:
            self.spark.interruptTag(tag)
        else:
            self.spark.sparkContext.cancelJobGroup(tag)

    @contextlib.contextmanager
    def _progress(self, tag: str, started: float) -> Iterator[Callable[[], None]]:
        """A function that reports the query's progress when called (classic Spark polls
        the status tracker; Spark Connect pushes reports to `_connect_progress`)."""
        callback = progress_callback(self.progress)
        if callback is None:
            yield lambda: None
            return
        if self.connect:
            self._reports[tag] = (callback, started)
        last: list[SparkProgress] = []

        def report() -> None:
            if self.connect:
                return
            current = self._tracked(tag, started)
            if current is not None and (not last or current != last[-1]):
                last[:] = [current]
                callback(current)

        try:
            yield report
        finally:
            self._reports.pop(tag, None)
            close = getattr(callback, "close", None)
            if close is not None:
                close()

    def _tracked(self, tag: str, started: float) -> SparkProgress | None:
        tracker = self.spark.sparkContext.statusTracker()
        stages = []
        for job in tracker.getJobIdsForGroup(tag):
            info = tracker.getJobInfo(job)
            if info is not None:
                stages += [tracker.getStageInfo(s) for s in info.stageIds]
        stages = [s for s in stages if s is not None]
        if not stages:
            return None
        return SparkProgress(
            stages_done=sum(s.numCompletedTasks == s.numTasks for s in stages),
            stages=len(stages),
            tasks_done=sum(s.numCompletedTasks for s in stages),
            tasks=sum(s.numTasks for s in stages),
            seconds=time.monotonic() - started,
        )

    def _connect_progress(self, stages: Any, inflight_tasks: int, **info: Any) -> None:
        """Spark Connect's pushed progress, handed to the callback of the running query."""
        stages = list(stages or [])
        for callback, started in list(self._reports.values()):
            callback(
                SparkProgress(
                    stages_done=sum(bool(s.done) for s in stages),
                    stages=len(stages),
                    tasks_done=sum(s.num_completed_tasks for s in stages),
                    tasks=sum(s.num_tasks for s in stages),
                    seconds=time.monotonic() - started,
                )
            )

    # -- tables ------------------------------------------------------------------

    def read(
        self, name: str, path: str | list[str], fmt: str | None = None, **options: Any
    ) -> None:
        """Make files (Parquet, CSV, ORC, JSON; a path, glob, folder or list) queryable as
        `name`. CSV is read with a header row and inferred types unless `options` say else."""
        paths = [path] if isinstance(path, str) else list(path)
        fmt = fmt or FILE_FORMATS.get(Path(paths[0].rstrip("/*")).suffix.lower())
        if fmt is None:
            known = ", ".join(sorted(set(FILE_FORMATS.values())))
            raise ConnectionFailed(f"Say which format {paths[0]!r} is: fmt= one of {known}")
        if fmt == "csv":
            options = {"header": "true", "inferSchema": "true", **options}
        if any(p.endswith(".tsv") for p in paths):
            options.setdefault("sep", "\t")

        def build() -> None:
            self.spark.read.format(fmt).options(**options).load(paths).createOrReplaceTempView(name)

        self._run(build, f"-- read {fmt} {paths[0]}")

    def register(self, name: str, data: Any) -> None:
        """Make Arrow data, a DataFrame, or a lake table (anything with ``to_arrow()``)
        queryable as `name`; the rows travel to Spark through the driver."""
        import pyarrow as pa

        if hasattr(data, "to_arrow"):
            data = data.to_arrow()
        elif type(data).__module__.startswith("pandas"):
            data = pa.Table.from_pandas(data, preserve_index=False)
        elif not isinstance(data, pa.Table):
            data = pa.table(data)
        self.spark.createDataFrame(data).createOrReplaceTempView(name)

    def columns(self) -> pa.Table:
        """Tables and temporary views of the current database, from ``SHOW TABLES`` and each
        table's schema (``catalog.listTables`` fails to decode its rows on a busy JVM)."""
        import pyarrow as pa
        from sqlglot import exp

        rows = []
        for table in self.spark.sql("SHOW TABLES").toArrow().to_pylist():
            schema = "" if table["isTemporary"] else table["namespace"]
            name = exp.table_(table["tableName"], db=schema or None, quoted=True)
            for column in self.spark.table(name.sql(dialect=self.dialect)).schema.fields:
                rows.append(
                    (schema, table["tableName"], column.name, column.dataType.simpleString())
                )
        names = ["schema", "table", "column", "type"]
        return pa.table(
            {n: pa.array([r[i] for r in rows], pa.string()) for i, n in enumerate(names)}
        )

    def close(self) -> None:
        """Let go of the Spark session; the last engine using it stops it."""
        with _lock:
            key = id(self.spark)
            _users[key] = _users.get(key, 1) - 1
            last = _users[key] <= 0
            if last:
                del _users[key]
        if last:
            with contextlib.suppress(Exception):
                self.spark.stop()


def to_arrow(frame: Any) -> pa.Table:
    """A Spark DataFrame's rows as Arrow (``toArrow`` in Spark 4; Arrow-enabled pandas before)."""
    import pyarrow as pa

    if hasattr(frame, "toArrow"):
        return frame.toArrow()
    return pa.Table.from_pandas(frame.toPandas(), preserve_index=False)


def require_java() -> None:
    """A clear error, rather than Spark's gateway failure, when no Java is installed."""
    home = os.environ.get("JAVA_HOME")
    if (home and Path(home, "bin", "java").exists()) or shutil.which("java"):
        return
    raise ConnectionFailed(
        "Spark needs Java 17 or newer: install a JDK (e.g. apt install openjdk-17-jre-headless) "
        "or set JAVA_HOME"
    )


def require_reachable(url: str, seconds: float = 5.0) -> None:
    """Fail fast when a Spark Connect server does not answer: its client would otherwise
    retry for minutes before saying anything."""
    parts = urlsplit(url)
    host, port = parts.hostname or "localhost", parts.port or CONNECT_PORT
    try:
        socket.create_connection((host, port), timeout=seconds).close()
    except OSError as exc:
        raise ConnectionFailed(
            f"No Spark Connect server answers at {host}:{port} ({exc.strerror or exc})"
        ) from None


def spark_error(exc: BaseException, sql: str) -> BaseException:
    """Spark's exception as the error a user reads: its first paragraph, no JVM stack."""
    from aiser_jupyter.errors import AiserError

    if isinstance(exc, AiserError):
        return exc
    if not isinstance(exc, Exception):
        return exc
    return QueryError(redact(first_line(exc)), sql=sql)


def first_line(exc: BaseException) -> str:
    """The first line of a Spark or Py4J error: no JVM stack trace, no query plan."""
    text = str(getattr(exc, "desc", None) or getattr(exc, "_message", None) or exc)
    lines = [line.strip() for line in text.strip().splitlines()]
    skipped = ("at ", "An error occurred while calling")
    lines = [line for line in lines if line and not line.startswith(skipped)]
    if not lines:
        return type(exc).__name__
    line = lines[0].lstrip(": ")
    head, sep, rest = line.partition(": ")
    return rest if sep and "." in head and " " not in head else line  # a Java class in front
