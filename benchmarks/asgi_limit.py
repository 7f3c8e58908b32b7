"""The ceiling for a cached answer: a raw ASGI app that checks the request's JWT with PyJWT
and answers a constant JSON body, with no framework, cache or metrics.

``bench_server.py`` runs it on the same uvicorn as ``aiser serve`` (``uvicorn
benchmarks.asgi_limit:app``) with the secret in ``CUBEJS_API_SECRET`` and the body (the
cached answer, so that both send the same bytes) in the file ``BENCH_BODY``. With
``BENCH_KEEP_TOKENS=1`` a token is verified once and then only its expiry checked (a dict
look-up): the floor for a server that caches verified tokens as ``aiser serve`` does.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import jwt

SECRET = os.environ["CUBEJS_API_SECRET"]
BODY = Path(os.environ["BENCH_BODY"]).read_bytes()
OK = [(b"content-length", str(len(BODY)).encode()), (b"content-type", b"application/json")]
REFUSED = b'{"error":"Invalid token","type":"ApiError"}'
KEEP = os.environ.get("BENCH_KEEP_TOKENS") == "1"
KNOWN: dict[str, float] = {}


async def app(scope: dict, receive, send) -> None:
    if scope["type"] != "http":  # lifespan: nothing to start
        message = await receive()
        while message["type"] != "lifespan.shutdown":
            await send({"type": message["type"] + ".complete"})
            message = await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    token = next((v for k, v in scope["headers"] if k == b"authorization"), b"").decode()
    try:
        if not KEEP or time.time() >= KNOWN.get(token, -math.inf):
            claims = jwt.decode(token.split()[-1], SECRET, algorithms=["HS256"])
            if KEEP:
                KNOWN[token] = float(claims.get("exp", math.inf))
    except (jwt.InvalidTokenError, IndexError):
        headers = [(b"content-length", str(len(REFUSED)).encode())]
        await send({"type": "http.response.start", "status": 403, "headers": headers})
        await send({"type": "http.response.body", "body": REFUSED})
        return
    await send({"type": "http.response.start", "status": 200, "headers": OK})
    await send({"type": "http.response.body", "body": BODY})
