"""The tools half of Session: the user's Python functions and MCP servers for the agent, and
the Session served as an MCP server.

A mixin, like the agent's and the semantic layer's: the registry lives in
``agent/registry.py`` and the protocol in this package, both imported on first use.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from aiser_jupyter.mcp.server import HttpServer


class ToolMethods:
    """Session methods for the agent's tools and for serving the Session over MCP."""

    def tool(
        self,
        fn: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
    ) -> Any:
        """Offer a Python function to the agent (``%%ask``), its arguments described by its
        type hints and docstring. Works as ``tool(fn)``, ``@tool`` and ``@tool(name=...)``;
        returns the function unchanged."""
        if fn is None:
            return lambda f: self.tool(f, name=name, description=description)
        from aiser_jupyter.agent.registry import registry_of

        registry_of(self).register(fn, name, description)
        return fn

    def mcp_add(
        self,
        name: str,
        command_or_url: str,
        args: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        start_timeout: float = 30.0,
    ) -> list[str]:
        """Start an MCP server (a command and its `args`, over stdio) or reach one (a
        streamable HTTP URL, with `headers` such as Authorization) and list its tools. They
        stay off for the agent until ``mcp_enable``. A command given as one string with
        spaces and no `args` is split like a shell line. A call may take `timeout` seconds,
        starting and listing `start_timeout`. Returns the tool names."""
        from aiser_jupyter.agent.registry import registry_of

        target, arguments = command_or_url, list(args)
        is_url = target.startswith(("http://", "https://"))
        if not is_url and not arguments and not os.path.exists(target):
            target, *arguments = shlex.split(target) or [target]
        tools = registry_of(self).add_server(
            name,
            target,
            arguments,
            env=env,
            headers=headers,
            timeout=timeout,
            start_timeout=start_timeout,
        )
        return [tool.name for tool in tools]

    def mcp_enable(self, name: str, tools: Sequence[str] | None = None) -> list[str]:
        """Let the agent call an MCP server's tools: all of them, or those named. Returns the
        names the model sees (``server__tool``)."""
        from aiser_jupyter.agent.registry import registry_of

        return registry_of(self).enable(name, tools)

    def mcp_disable(self, name: str, tools: Sequence[str] | None = None) -> None:
        """Take an MCP server's tools (all, or those named) away from the agent."""
        from aiser_jupyter.agent.registry import registry_of

        registry_of(self).disable(name, tools)

    def mcp_remove(self, name: str) -> None:
        """Stop an MCP server and forget it."""
        from aiser_jupyter.agent.registry import registry_of

        registry_of(self).remove(name)

    def tools_frame(self) -> pd.DataFrame:
        """Every tool the agent knows: its name as the model sees it, where it comes from
        (built-in, python, mcp:SERVER), whether it is enabled, and its description."""
        import pandas as pd

        from aiser_jupyter.agent.registry import registry_of

        columns = ["name", "source", "enabled", "description"]
        return pd.DataFrame(registry_of(self).rows(), columns=columns)

    def mcp_server(self, host: str = "127.0.0.1", port: int = 8765) -> HttpServer:
        """Serve this Session's connections and model to MCP clients over streamable HTTP
        (``http://HOST:PORT/mcp``) from a background thread; ``.stop()`` ends it."""
        from aiser_jupyter.mcp.server import serve_http

        return serve_http(self, host, port)

    def close_tools(self) -> None:
        """Stop every MCP server this Session started (for ``Session.close``)."""
        registry = getattr(self, "_tool_registry", None)
        if registry is not None:
            registry.close()
