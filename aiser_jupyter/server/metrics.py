"""What ``/metrics`` tells Prometheus: requests, latency, result-cache hits, queries per engine.

Each app has its own registry, so that two servers in one process (tests, notebooks) keep
their counts apart.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from typing import Any

ENDPOINTS = frozenset(
    {
        "/cubejs-api/v1/load",
        "/cubejs-api/v1/sql",
        "/cubejs-api/v1/meta",
        "/metrics",
        "/livez",
        "/readyz",
    }
)
"""Paths counted under their own name; any other is "other" (labels stay few)."""

FAST_PATH = "/cubejs-api/v1/load"
"""The endpoint whose cached answers the fast path gives (server/fast.py)."""

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "aiser_http_requests",
            "HTTP requests answered, by endpoint, method and status",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "aiser_http_request_duration_seconds",
            "Time from request to the end of its answer",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.cache = Counter(
            "aiser_result_cache_lookups",
            "Result cache look-ups, by result (hit or miss)",
            ["result"],
            registry=self.registry,
        )
        self.queries = Counter(
            "aiser_queries",
            "Semantic queries run, by engine and whether a pre-aggregation answered",
            ["engine", "pre_aggregation"],
            registry=self.registry,
        )
        self.query_seconds = Histogram(
            "aiser_query_duration_seconds",
            "Time a query took in its worker, by engine",
            ["engine"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.continue_wait = Counter(
            "aiser_continue_wait",
            "Load answers that said 'Continue wait' (the query was still running)",
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "aiser_queries_in_flight", "Queries running or queued now", registry=self.registry
        )
        self.shared = Counter(
            "aiser_shared_cache_lookups",
            "Look-ups in the cache shared by every process (Redis), by result",
            ["result"],
            registry=self.registry,
        )
        self.shared_waits = Counter(
            "aiser_shared_waits",
            "Queries answered by another process's run of them (not run here)",
            registry=self.registry,
        )
        self.shared_errors = Counter(
            "aiser_shared_cache_errors",
            "Calls to the shared cache that failed (answered from this process instead)",
            registry=self.registry,
        )
        self.cache_hit = self.cache.labels("hit")
        self._reset_fast()
        self._miss = self.cache.labels("miss")
        self._shared_hit = self.shared.labels("hit")
        self._shared_miss = self.shared.labels("miss")

    def cache_lookup(self, hit: bool) -> None:
        (self.cache_hit if hit else self._miss).inc()

    def shared_lookup(self, hit: bool) -> None:
        (self._shared_hit if hit else self._shared_miss).inc()

    def query_done(self, engine: str, pre_aggregation: bool, seconds: float) -> None:
        self.queries.labels(engine, "yes" if pre_aggregation else "no").inc()
        self.query_seconds.labels(engine).observe(seconds)

    def fast_answer(self, seconds: float) -> None:
        """A cached GET /v1/load answered by the fast path: counted here in plain integers
        (a labelled counter and histogram take a lock each, a third of the fast path's own
        time) and added to the request metrics before they are read."""
        self._fast_answers += 1
        self._fast_seconds += seconds
        self._fast_buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self._fast_hits += 1

    def exposition(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        self._fold_fast_answers()
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def _fold_fast_answers(self) -> None:
        if not self._fast_answers:
            return
        self.requests.labels(FAST_PATH, "GET", "200").inc(self._fast_answers)
        self.cache_hit.inc(self._fast_hits)
        latency = self.latency.labels(FAST_PATH)
        # prometheus_client has no public way to add n observations to a bucket
        for bucket, count in zip(latency._buckets, self._fast_buckets, strict=True):
            if count:
                bucket.inc(count)
        latency._sum.inc(self._fast_seconds)
        self._reset_fast()

    def _reset_fast(self) -> None:
        self._fast_answers = self._fast_hits = 0
        self._fast_seconds = 0.0
        self._fast_buckets = [0] * (len(LATENCY_BUCKETS) + 1)


class MetricsMiddleware:
    """Plain ASGI (no per-request task or body copy): counts and times every HTTP answer."""

    def __init__(self, app: Any, metrics: Metrics):
        self.app = app
        self.metrics = metrics
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._latencies: dict[str, Any] = {}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            path = scope["path"] if scope["path"] in ENDPOINTS else "other"
            self._latency(path).observe(time.perf_counter() - started)
            self._counter(path, scope["method"], status).inc()

    def _counter(self, path: str, method: str, status: int) -> Any:
        """The labelled counter, looked up once per label set (labels() takes a lock)."""
        key = (path, method, status)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = self.metrics.requests.labels(path, method, str(status))
        return counter

    def _latency(self, path: str) -> Any:
        histogram = self._latencies.get(path)
        if histogram is None:
            histogram = self._latencies[path] = self.metrics.latency.labels(path)
        return histogram
