"""The hot path: a cached ``/v1/load`` answer sent as prebuilt bytes before FastAPI is entered.

A dashboard asks the same few queries again and again with the same token, so the request
that matters most is a GET whose token was verified before, whose query string was parsed
before and whose answer is in the cache. `CubeApi` answers exactly that request in a few
dictionary look-ups: the token's verified record (auth.py: kept until it expires), the
query string's normalised key (learned when the full path first answered it) and the
cached body. Any other request (a new token, an expired one, a query string not seen, a
miss, an ``Origin`` checked against a list of origins, a POST) goes through FastAPI
unchanged, which answers it as before: the same errors, headers and metrics.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

if TYPE_CHECKING:
    from aiser_jupyter.server.auth import Verifier
    from aiser_jupyter.server.jobs import Answers
    from aiser_jupyter.server.metrics import Metrics

LOAD_PATH = "/cubejs-api/v1/load"
ROUTES_KEPT = 4096
"""Query strings whose normalised key is kept (a dashboard's queries, many dashboards)."""


class CubeApi(FastAPI):
    """FastAPI with a fast path in front for cached answers (`fast` set by ``create_app``)."""

    fast: FastLoad | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        fast = self.fast
        if fast is not None and scope["type"] == "http" and scope["path"] == LOAD_PATH:
            started = time.perf_counter()
            found = fast.answer(scope)
            if found is not None:
                body, tail = found
                headers = [(b"content-length", str(len(body)).encode()), *tail]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                fast.answered(time.perf_counter() - started)
                return
        await super().__call__(scope, receive, send)


class FastLoad:
    """Finds a GET's cached answer from its raw header and query string, without parsing."""

    def __init__(
        self,
        verifier: Verifier,
        answers: Answers,
        metrics: Metrics,
        own_scope: Callable[[], str],
        *,
        cors: Sequence[str],
    ):
        """`own_scope()` is the cache's requester key when there is no secret; `cors` the
        origins the CORS middleware lets in."""
        from aiser_jupyter.server.lru import Lru

        self.verifier = verifier
        self.answers = answers
        self.own_scope = own_scope
        json_type = (b"content-type", b"application/json")
        vary = (b"vary", b"Origin")
        self.headers = [json_type, vary] if cors else [json_type]
        """What follows the length, as FastAPI and the CORS middleware write it: for a
        request with no Origin, the middleware says the answer varies by it."""
        self.origin_headers = (
            [json_type, (b"access-control-allow-origin", b"*"), vary]
            if list(cors) == ["*"]
            else None
        )
        """For a request with an Origin when any may call (a dashboard in a browser); with
        a list of origins, the middleware checks each (the full path answers)."""
        self._routes = Lru(ROUTES_KEPT)
        self.answered = metrics.fast_answer
        """Count a fast answer (seconds it took) as the metrics middleware would have."""

    def learn(self, query_string: bytes, key: str) -> None:
        """`query_string` asks the regular query whose cache key (without its requester) is
        `key`: the next GET with it skips parsing."""
        self._routes.put(query_string, key)

    def answer(self, scope: dict[str, Any]) -> tuple[bytes, list[tuple[bytes, bytes]]] | None:
        """The cached body for this request and the headers after its length, or None: let
        the full path answer it."""
        if scope["method"] != "GET":
            return None
        key = self._routes.get(scope["query_string"])
        if key is None:
            return None
        header = None
        headers = self.headers
        for name, value in scope["headers"]:
            if name == b"x-cube-authorization":
                header = value
            elif name == b"authorization":
                header = header or value
            elif name == b"origin":
                headers = self.origin_headers
                if headers is None:
                    return None
        if self.verifier.secret is None:
            scope_key = self.own_scope()
        else:
            verified = header and self.verifier.known(header.decode("latin-1"))
            if not verified:
                return None
            scope_key = verified.key
        body = self.answers.cached(key + scope_key)
        if body is None:
            return None
        return body, headers
