"""An MCP server that dies: listing works, calling ``explode`` ends the process with a message
on stderr, as a server that hits a fatal bug does."""

from __future__ import annotations

import os
import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("crashing")


@server.tool()
def explode() -> str:
    """Do something the server cannot survive."""
    print("fatal: the ticket database file is missing", file=sys.stderr, flush=True)
    os._exit(3)


@server.tool()
def ping() -> str:
    """Answer pong."""
    return "pong"


if __name__ == "__main__":
    server.run("stdio")
