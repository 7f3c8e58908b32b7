"""A real OpenAI-protocol chat-completions server on loopback, with scripted replies.

Tests drive the agent through litellm's real HTTP client against this server, so
the wire format, headers, timeouts and errors are the ones a real provider gives;
nothing is mocked. Stdlib only::

    with FakeLLM() as llm:
        llm.script(Call("run_sql", {"sql": "select 1"}), "One.")
        run_loop(..., model="openai/test-model", api_base=llm.api_base)
        llm.requests[1]["messages"][-1]  # the tool result the model was sent

A reply is one of:

- ``str``: a plain answer (``""`` is an empty message, which a client should treat as garbage);
- ``Call`` or a list of ``Call``: the model asks for tool calls (OpenAI ``tool_calls`` with ids);
- ``Raw(body)``: this body verbatim with HTTP 200 (not JSON, JSON without ``choices`` …);
- ``Status(code)``: an HTTP error in OpenAI's error shape;
- ``Delay(seconds, reply)``: sleep, then answer ``reply`` (for client timeouts);
- a callable taking the request's JSON body and returning one of the above.

With no reply left the server answers HTTP 500 saying so, so a test that asks once
too often fails loudly rather than hanging.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["Call", "Delay", "FakeLLM", "Raw", "Reply", "Status"]

PATHS = ("/v1/chat/completions", "/chat/completions")


@dataclass(frozen=True)
class Call:
    """One tool call the model asks for; ``arguments`` as a dict, or a str sent verbatim."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)


@dataclass(frozen=True)
class Raw:
    """A body sent as is with HTTP 200: what a broken or foreign server answers."""

    body: str
    content_type: str = "application/json"


@dataclass(frozen=True)
class Status:
    """An HTTP error status with an OpenAI-shaped error body."""

    code: int
    message: str = "scripted error"


@dataclass(frozen=True)
class Delay:
    """Wait ``seconds``, then answer ``reply``: longer than the client's timeout, it times out."""

    seconds: float
    reply: Reply = "late answer"


Reply = str | Call | list[Call] | Raw | Status | Delay | Callable[[dict[str, Any]], Any]


def estimate_tokens(value: Any) -> int:
    """Tokens as about a quarter of the JSON characters: realistic enough for budgets."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return max(1, len(text) // 4)


class FakeLLM:
    """An OpenAI-compatible server on 127.0.0.1 answering from a script, recording each request."""

    def __init__(self, model: str = "test-model") -> None:
        self.model = model
        self.requests: list[dict[str, Any]] = []  # JSON bodies received, in order
        self.headers: list[dict[str, str]] = []  # their HTTP headers
        self.responses: list[dict[str, Any]] = []  # JSON bodies of the completions sent
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._ids = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        # Handler threads may sit in a Delay or on a kept-alive connection: close() must not wait.
        self._server.block_on_close = False
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *replies: Reply) -> FakeLLM:
        """Queue replies, answered one per request in order."""
        with self._lock:
            self._replies.extend(replies)
        return self

    @property
    def pending(self) -> int:
        """Replies scripted but not yet asked for."""
        return len(self._replies)

    def __enter__(self) -> FakeLLM:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- answering ---------------------------------------------------------------

    def _next_reply(self, body: dict[str, Any], headers: dict[str, str]) -> Reply | None:
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            return self._replies.popleft() if self._replies else None

    def _next_id(self, prefix: str) -> str:
        with self._lock:
            self._ids += 1
            return f"{prefix}_{self._ids:04d}"

    def _completion(self, body: dict[str, Any], reply: str | Call | list[Call]) -> dict[str, Any]:
        """An OpenAI chat.completion object for a text answer or for tool calls."""
        calls = [reply] if isinstance(reply, Call) else reply
        if isinstance(calls, list):
            tool_calls = [
                {
                    "id": self._next_id("call"),
                    "type": "function",
                    "function": {
                        "name": call.name,
                        "arguments": call.arguments
                        if isinstance(call.arguments, str)
                        else json.dumps(call.arguments),
                    },
                }
                for call in calls
            ]
            message: dict[str, Any] = {"role": "assistant", "content": None}
            message["tool_calls"] = tool_calls
            finish, completion = "tool_calls", estimate_tokens(tool_calls)
        else:
            message = {"role": "assistant", "content": calls}
            finish, completion = "stop", estimate_tokens(calls) if calls else 0
        prompt = estimate_tokens({"messages": body.get("messages"), "tools": body.get("tools")})
        return {
            "id": self._next_id("chatcmpl"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real providers do

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: tests read `requests`, not stderr."""

            def _send(self, status: int, body: str, content_type: str = "application/json"):
                data = body.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (its timeout) before we answered

            def _error(self, status: int, message: str, kind: str = "server_error") -> None:
                error = {"message": message, "type": kind, "param": None, "code": str(status)}
                self._send(status, json.dumps({"error": error}))

            def do_GET(self) -> None:
                self._error(404, f"no route {self.path}", "invalid_request_error")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.path.rstrip("/") not in PATHS:
                    self._error(404, f"no route {self.path}", "invalid_request_error")
                    return
                try:
                    body = json.loads(raw)
                except ValueError:
                    self._error(400, "request body is not JSON", "invalid_request_error")
                    return
                reply = fake._next_reply(body, dict(self.headers.items()))
                if body.get("stream"):
                    self._error(400, "FakeLLM answers stream=false only", "invalid_request_error")
                    return
                self._answer(body, reply)

            def _answer(self, body: dict[str, Any], reply: Reply | None) -> None:
                while callable(reply) or isinstance(reply, Delay):
                    if isinstance(reply, Delay):
                        time.sleep(reply.seconds)
                        reply = reply.reply
                    else:
                        reply = reply(body)
                if reply is None:
                    self._error(500, "FakeLLM: no scripted reply left")
                elif isinstance(reply, Status):
                    self._error(reply.code, reply.message)
                elif isinstance(reply, Raw):
                    self._send(200, reply.body, reply.content_type)
                else:
                    completion = fake._completion(body, reply)
                    fake.responses.append(completion)
                    self._send(200, json.dumps(completion))

        return Handler
