"""Connections to MCP servers, for the kernel, which is synchronous.

The ``mcp`` SDK is async (anyio). Each connection lives in one task on a background event
loop (one daemon thread for the process): the task enters the SDK's ``Client`` and then
serves calls from a queue, so the SDK's cancel scopes open and close in the same task. The
kernel waits for each answer with a timeout. A server that exits, hangs or talks garbage
becomes an ``McpError`` that says so, with the last lines it wrote on stderr; it never
stops the kernel.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import shlex
import tempfile
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from aiser_jupyter.errors import AiserError
from aiser_jupyter.security.secrets import is_secret_key, redact, redact_url, register

__all__ = [
    "McpConnection",
    "McpError",
    "McpStopped",
    "McpTimeout",
    "McpToolError",
    "RemoteTool",
    "result_text",
]

DESCRIPTION_CHARS = 1_000
"""Characters of a server's tool description kept: a description is text the model reads."""
CLOSE_SECONDS = 5.0
"""How long closing waits for a server to stop before leaving it to be killed."""
GRACE_SECONDS = 5.0
"""Extra wait past a call's own timeout before the connection is given up as wedged."""


class McpError(AiserError):
    """An MCP server could not be started or reached, stopped, timed out, or failed a call."""


class McpToolError(McpError):
    """A tool ran and reported an error; the server itself is fine."""


class McpStopped(McpError):
    """The server's process exited or its connection closed."""


class McpTimeout(McpError):
    """The server did not answer in time."""


@dataclass(frozen=True)
class RemoteTool:
    """A tool an MCP server offers, as the server describes it."""

    name: str
    description: str
    parameters: dict[str, Any]


_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def background_loop() -> asyncio.AbstractEventLoop:
    """The process's event loop for MCP connections, in a daemon thread started on first use."""
    global _loop
    with _loop_lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="aiser-mcp", daemon=True).start()
            _loop = loop
        return _loop


Job = tuple[Callable[[Any], Awaitable[Any]], concurrent.futures.Future]


class McpConnection:
    """One MCP server: a command started over stdio, or a streamable HTTP URL."""

    def __init__(
        self,
        name: str,
        target: str,
        args: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        start_timeout: float = 30.0,
    ) -> None:
        self.name = name
        self.target = target
        self.args = [str(arg) for arg in args]
        self.env = dict(env) if env else None
        self.headers = dict(headers) if headers else None
        self.timeout = timeout
        """Seconds a call may take."""
        self.start_timeout = start_timeout
        """Seconds starting the server and listing its tools may take."""
        self.is_url = target.startswith(("http://", "https://"))
        self.tools: list[RemoteTool] = []
        for key, value in (self.env or {}).items():
            if is_secret_key(key):
                register(value)
        for value in (self.headers or {}).values():
            register(value)
            register(value.partition(" ")[2])  # the token of "Bearer <token>"
        self._task: concurrent.futures.Future | None = None
        self._jobs: asyncio.Queue[Job | None] | None = None
        self._stderr: Any = None

    @property
    def where(self) -> str:
        """What runs or answers, for a listing (passwords hidden)."""
        if self.is_url:
            return redact_url(self.target)
        return redact(shlex.join([self.target, *self.args]))

    @property
    def alive(self) -> bool:
        return self._jobs is not None and self._task is not None and not self._task.done()

    def open(self) -> list[RemoteTool]:
        """Start (or restart) the server and list its tools."""
        self.close()
        ready: concurrent.futures.Future = concurrent.futures.Future()
        self._task = asyncio.run_coroutine_threadsafe(self._serve(ready), background_loop())
        try:
            self.tools = ready.result(self.start_timeout)
        except concurrent.futures.TimeoutError:
            self._task.cancel()
            raise McpTimeout(
                f"MCP server {self.name!r} did not answer within {self.start_timeout:g} s"
                + self._last_words()
            ) from None
        except BaseException:
            self._task.cancel()
            raise
        return self.tools

    def call(self, tool: str, arguments: Mapping[str, Any], timeout: float | None = None) -> str:
        """Call a tool and return its result as text; a server that stopped since is restarted.

        Raises McpToolError when the tool reports an error, McpError when the server fails,
        stops or does not answer within `timeout` seconds (default: the connection's)."""
        limit = self.timeout if timeout is None else timeout
        if not self.alive:
            self.open()

        async def run(client: Any) -> Any:
            return await client.call_tool(tool, dict(arguments), read_timeout_seconds=limit)

        late = f"MCP server {self.name!r}: {tool} did not answer within {limit:g} s"
        try:
            result = self._submit(run, limit + GRACE_SECONDS)
        except concurrent.futures.TimeoutError:
            self.close()
            raise McpTimeout(late + "; the server was stopped") from None
        except McpTimeout:
            raise McpTimeout(late) from None
        text = result_text(result)
        if result.is_error:
            raise McpToolError(text)
        return text

    def close(self) -> None:
        """Stop the server (its process ends); waits a few seconds at most."""
        task, self._task = self._task, None
        if task is None or task.done():
            return
        background_loop().call_soon_threadsafe(self._stop)
        try:
            task.result(CLOSE_SECONDS)
        except BaseException:
            task.cancel()

    def _stop(self) -> None:
        if self._jobs is not None:
            self._jobs.put_nowait(None)

    def _submit(self, work: Callable[[Any], Awaitable[Any]], timeout: float) -> Any:
        """Run `work(client)` in the connection's task; its result."""
        done: concurrent.futures.Future = concurrent.futures.Future()

        def put() -> None:
            if self._jobs is None:
                done.set_exception(McpStopped(f"MCP server {self.name!r} stopped"))
            else:
                self._jobs.put_nowait((work, done))

        background_loop().call_soon_threadsafe(put)
        try:
            return done.result(timeout)
        except BaseException:
            done.cancel()
            raise

    async def _serve(self, ready: concurrent.futures.Future) -> None:
        """Connect, list the tools, then run jobs until told to stop or the server goes."""
        from mcp import Client

        jobs: asyncio.Queue[Job | None] = asyncio.Queue()
        self._jobs = jobs
        with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as stderr:
            self._stderr = stderr
            try:
                async with AsyncExitStack() as stack:
                    client = await stack.enter_async_context(Client(await self._transport(stack)))
                    _settle(ready, await _list_tools(client))
                    while (job := await jobs.get()) is not None:
                        work, done = job
                        if not done.set_running_or_notify_cancel():
                            continue
                        try:
                            done.set_result(await work(client))
                        except Exception as exc:
                            error = self._error(exc)
                            done.set_exception(error)
                            if isinstance(error, McpStopped):
                                self._jobs = None  # calls from now on restart the server
                                break
            except asyncio.CancelledError:
                _settle(ready, error=McpError(f"MCP server {self.name!r}: connecting was stopped"))
                raise
            except BaseException as exc:
                _settle(ready, error=self._error(exc))
            finally:
                if self._jobs is jobs:
                    self._jobs = None
                while not jobs.empty():
                    job = jobs.get_nowait()
                    if job is not None and job[1].set_running_or_notify_cancel():
                        job[1].set_exception(McpStopped(f"MCP server {self.name!r} stopped"))

    async def _transport(self, stack: AsyncExitStack) -> Any:
        if self.is_url:
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            http = httpx2.AsyncClient(headers=self.headers, timeout=httpx2.Timeout(30, read=300))
            await stack.enter_async_context(http)
            return streamable_http_client(self.target, http_client=http)
        from mcp import StdioServerParameters
        from mcp.client.stdio import stdio_client

        parameters = StdioServerParameters(command=self.target, args=self.args, env=self.env)
        return stdio_client(parameters, errlog=self._stderr)

    def _error(self, exc: BaseException) -> McpError:
        """One clear error for whatever went wrong, with the server's last words."""
        from mcp.shared.exceptions import MCPError
        from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT

        leaf = _first_leaf(exc)
        name = repr(self.name)
        if isinstance(leaf, MCPError) and leaf.error.code == CONNECTION_CLOSED:
            return McpStopped(f"MCP server {name} stopped{self._last_words()}")
        if isinstance(leaf, MCPError) and leaf.error.code == REQUEST_TIMEOUT:
            return McpTimeout(f"MCP server {name} did not answer in time")
        if isinstance(leaf, McpError):
            return leaf
        if isinstance(leaf, OSError) and not self.is_url:
            return McpError(f"MCP server {name} could not start ({self.where}): {leaf}")
        detail = f"{type(leaf).__name__}: {leaf}".rstrip(": ")
        if self.is_url:
            return McpError(f"MCP server {name} at {self.where} failed: {redact(detail)}")
        return McpError(f"MCP server {name} failed: {redact(detail)}{self._last_words()}")

    def _last_words(self) -> str:
        """The last lines the server wrote on stderr, as a suffix for an error."""
        try:
            fd = self._stderr.fileno()
            size = os.fstat(fd).st_size
            tail = os.pread(fd, 2000, max(0, size - 2000)).decode("utf-8", "replace")
        except (AttributeError, ValueError, OSError):  # no server started yet, or it is gone
            return ""
        lines = [" ".join(line.split()) for line in tail.splitlines() if line.strip()]
        words = " | ".join(lines[-3:])[-300:]
        return f" (it said: {redact(words)})" if words else ""


async def _list_tools(client: Any) -> list[RemoteTool]:
    tools: list[RemoteTool] = []
    cursor = None
    for _ in range(100):
        page = await client.list_tools(cursor=cursor)
        for tool in page.tools:
            description = tool.description or tool.title or ""
            tools.append(RemoteTool(tool.name, description[:DESCRIPTION_CHARS], tool.input_schema))
        cursor = page.next_cursor
        if cursor is None:
            break
    return tools


def result_text(result: Any) -> str:
    """A tool result as the text the model reads: its text blocks, else its structured data."""
    parts = []
    for block in result.content:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)
        elif kind == "resource":
            resource = block.resource
            parts.append(getattr(resource, "text", None) or f"[binary resource {resource.uri}]")
        elif kind == "resource_link":
            parts.append(f"[resource {block.uri}]")
        else:
            parts.append(f"[{kind} content, {getattr(block, 'mime_type', '')}]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False, default=str))
    return "\n".join(parts)


def _first_leaf(exc: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups."""
    while isinstance(getattr(exc, "exceptions", None), tuple):  # an exception group
        inner = [e for e in exc.exceptions if not isinstance(e, asyncio.CancelledError)]
        exc = (inner or list(exc.exceptions))[0]
    return exc


def _settle(
    future: concurrent.futures.Future, value: Any = None, error: BaseException | None = None
) -> None:
    """Give the waiting kernel its answer, unless it stopped waiting."""
    if future.done():
        return
    if error is None:
        future.set_result(value)
    else:
        future.set_exception(error)
