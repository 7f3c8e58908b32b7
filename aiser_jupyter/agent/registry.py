"""One registry of the tools the agent may use: the built-in tools over the Session, Python
functions the user registers, and the tools of MCP servers.

A function's JSON schema comes from its type hints (pydantic) and its docstring (the summary,
and each argument's line), and its arguments are checked against them before it runs. MCP
tools are off until the user enables them, a whole server or some of its tools: a server is
someone else's code, and its descriptions and results are text the model reads. Whatever a
tool returns reaches the model as data (the loop's envelope), cut to RESULT_CHARS.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiser_jupyter.agent.loop import Tool, ToolFailed
from aiser_jupyter.agent.tools import Workspace, build_tools, frame_text
from aiser_jupyter.errors import AiserError

if TYPE_CHECKING:
    from aiser_jupyter.agent.mcp_client import McpConnection, RemoteTool

__all__ = ["ToolRegistry", "ToolRegistryError", "agent_tools", "function_tool", "registry_of"]

RESULT_CHARS = 8_000
"""Characters of one tool result the model reads (it is told how many there were)."""
NAME_CHARS = 64
"""The longest function name model APIs accept (OpenAI: ``^[a-zA-Z0-9_-]{1,64}$``)."""


class ToolRegistryError(AiserError):
    """A tool or MCP server name that the registry does not know, or cannot take."""


@dataclass
class Server:
    """An MCP server the user added, and which of its tools the agent may call."""

    connection: McpConnection
    everything: bool = False
    """Every tool the server offers, now or after a restart."""
    enabled: set[str] = field(default_factory=set)
    """Otherwise, these tools only."""

    def is_enabled(self, tool: str) -> bool:
        return self.everything or tool in self.enabled


class ToolRegistry:
    """The tools of one Session, by where they come from."""

    def __init__(self) -> None:
        self.functions: dict[str, Tool] = {}
        self.servers: dict[str, Server] = {}

    # -- Python functions ----------------------------------------------------------

    def register(
        self, fn: Callable[..., Any], name: str | None = None, description: str | None = None
    ) -> Tool:
        """Offer `fn` to the agent (on at once: the user wrote it); a later one of the same
        name replaces it, so a re-run cell is tidy."""
        tool = function_tool(fn, name, description)
        if tool.name in builtin_names():
            raise ToolRegistryError(f"{tool.name!r} is a built-in tool's name: choose another")
        self.functions[tool.name] = tool
        return tool

    # -- MCP servers ---------------------------------------------------------------

    def add_server(
        self,
        name: str,
        target: str,
        args: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        start_timeout: float = 30.0,
    ) -> list[RemoteTool]:
        """Start (stdio command) or reach (URL) an MCP server and list its tools, all off.
        Adding a name again replaces that server and turns its tools off again."""
        from aiser_jupyter.agent.mcp_client import McpConnection

        if not is_name(name):
            raise ToolRegistryError(f"MCP server name {name!r}: use letters, digits, _ and -")
        connection = McpConnection(
            name,
            target,
            args,
            env=env,
            headers=headers,
            timeout=timeout,
            start_timeout=start_timeout,
        )
        tools = connection.open()
        self.remove(name)
        self.servers[name] = Server(connection)
        return tools

    def enable(self, server: str, tools: Iterable[str] | None = None) -> list[str]:
        """Let the agent call a server's tools (all of them, or those named); the names the
        model sees for them."""
        entry = self._server(server)
        if tools is None:
            entry.everything = True
        else:
            entry.enabled |= self._known(entry, tools)
        return [
            qualified(server, t.name) for t in entry.connection.tools if entry.is_enabled(t.name)
        ]

    def disable(self, server: str, tools: Iterable[str] | None = None) -> None:
        """Take a server's tools (all, or those named) away from the agent."""
        entry = self._server(server)
        if tools is None:
            entry.everything, entry.enabled = False, set()
            return
        names = self._known(entry, tools)
        if entry.everything:
            entry.everything = False
            entry.enabled = {t.name for t in entry.connection.tools}
        entry.enabled -= names

    def remove(self, server: str) -> None:
        """Stop a server and forget it (unknown names are ignored)."""
        entry = self.servers.pop(server, None)
        if entry is not None:
            entry.connection.close()

    def _server(self, name: str) -> Server:
        try:
            return self.servers[name]
        except KeyError:
            known = ", ".join(self.servers) or "none yet"
            raise ToolRegistryError(f"No MCP server named {name!r} (added: {known})") from None

    @staticmethod
    def _known(entry: Server, tools: Iterable[str]) -> set[str]:
        offered = {t.name for t in entry.connection.tools}
        names = set(tools)
        if unknown := sorted(names - offered):
            raise ToolRegistryError(
                f"MCP server {entry.connection.name!r} has no tool {', '.join(unknown)} "
                f"(it offers: {', '.join(sorted(offered)) or 'nothing'})"
            )
        return names

    # -- what the agent gets -------------------------------------------------------

    def for_agent(self, work: Workspace) -> list[Tool]:
        """The tools one question offers the model: built-in, the user's functions, and the
        MCP tools that are enabled. Every result also counts as evidence for the answer."""
        extra = list(self.functions.values())
        for name, entry in self.servers.items():
            extra += [
                mcp_tool(entry.connection, name, remote)
                for remote in entry.connection.tools
                if entry.is_enabled(remote.name)
            ]
        return build_tools(work) + [_evidence(tool, work) for tool in extra]

    def rows(self) -> list[dict[str, Any]]:
        """Every tool, where it comes from, and whether the agent may call it."""
        rows = [
            {"name": t.name, "source": "built-in", "enabled": True, "description": t.description}
            for t in build_tools(Workspace(None))
        ]
        rows += [
            {"name": t.name, "source": "python", "enabled": True, "description": t.description}
            for t in self.functions.values()
        ]
        for name, entry in self.servers.items():
            state = "" if entry.connection.alive else " (stopped)"
            rows += [
                {
                    "name": qualified(name, t.name),
                    "source": f"mcp:{name}{state}",
                    "enabled": entry.is_enabled(t.name),
                    "description": t.description,
                }
                for t in entry.connection.tools
            ]
        return rows

    def close(self) -> None:
        for name in list(self.servers):
            self.remove(name)


def registry_of(session: Any) -> ToolRegistry:
    """The Session's tool registry, made on first use."""
    registry = getattr(session, "_tool_registry", None)
    if registry is None:
        registry = ToolRegistry()
        session._tool_registry = registry
    return registry


def agent_tools(work: Workspace) -> list[Tool]:
    """The tools a question offers the model (see ``ToolRegistry.for_agent``)."""
    return registry_of(work.session).for_agent(work)


def builtin_names() -> set[str]:
    return {tool.name for tool in build_tools(Workspace(None))}


def qualified(server: str, tool: str) -> str:
    """The name the model sees for an MCP tool: ``server__tool``, in the characters and the
    length model APIs accept."""
    return "".join(c if is_name(c) else "_" for c in f"{server}__{tool}")[:NAME_CHARS]


def is_name(text: str) -> bool:
    """Whether model APIs take `text` as a function name."""
    return 0 < len(text) <= NAME_CHARS and all(
        c.isascii() and (c.isalnum() or c in "_-") for c in text
    )


def function_tool(
    fn: Callable[..., Any], name: str | None = None, description: str | None = None
) -> Tool:
    """A Python function as a tool: its schema from its type hints and docstring; arguments
    are checked (and converted, e.g. "2024-01-31" to a date) before it runs."""
    import docstring_parser
    from pydantic import TypeAdapter, ValidationError, validate_call

    tool_name = name or getattr(fn, "__name__", "")
    if not is_name(tool_name):
        raise ToolRegistryError(
            f"Tool name {tool_name!r}: give a name of letters, digits, _ and - (name=...)"
        )
    doc = docstring_parser.parse(fn.__doc__ or "")
    summary = "\n\n".join(p for p in (doc.short_description, doc.long_description) if p)
    try:
        schema = TypeAdapter(fn).json_schema()
        checked = validate_call(fn)
    except Exception as exc:  # pydantic cannot describe some hint: say which function
        raise ToolRegistryError(f"Cannot describe {tool_name}'s arguments: {exc}") from None
    properties = schema.get("properties", {})
    for param in doc.params:
        if param.arg_name in properties and param.description:
            properties[param.arg_name]["description"] = " ".join(param.description.split())

    def run(arguments: dict[str, Any]) -> str:
        try:
            value = checked(**arguments)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors()
            )
            raise ToolFailed(f"bad arguments for {tool_name}: {problems}") from None
        except Exception as exc:  # the user's function failed: the model reads why
            raise ToolFailed(f"{tool_name} failed: {type(exc).__name__}: {exc}") from None
        return as_text(value)

    return Tool(tool_name, description or summary or tool_name, schema, run)


def mcp_tool(connection: McpConnection, server: str, remote: RemoteTool) -> Tool:
    """An MCP server's tool as the loop runs it: a server that fails, stops or hangs becomes
    a ToolFailed the model (and the steps) can read."""
    from aiser_jupyter.agent.mcp_client import McpError

    def run(arguments: dict[str, Any]) -> str:
        try:
            return connection.call(remote.name, arguments)
        except McpError as exc:
            raise ToolFailed(str(exc)) from None

    return Tool(qualified(server, remote.name), remote.description, remote.parameters, run)


def as_text(value: Any) -> str:
    """A function's return value as the model reads it: text, a table as CSV, else JSON."""
    import pandas as pd

    from aiser_jupyter.result import Result

    if isinstance(value, str):
        return value
    if value is None:
        return "done"
    if isinstance(value, Result):
        value = value.df
    if isinstance(value, pd.DataFrame):
        return frame_text(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def _evidence(tool: Tool, work: Workspace) -> Tool:
    """The tool with its results cut to RESULT_CHARS and kept as the answer's evidence."""

    def run(arguments: dict[str, Any]) -> str:
        text = tool.run(arguments)
        if len(text) > RESULT_CHARS:
            text = f"{text[:RESULT_CHARS]}\n… (cut at {RESULT_CHARS:,} of {len(text):,} characters)"
        return work.give(text)

    return Tool(tool.name, tool.description, tool.parameters, run)
