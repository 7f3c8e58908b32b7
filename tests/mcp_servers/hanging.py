"""An MCP server that hangs: ``wait`` never returns; with ``--at-start`` the process never
answers at all (it reads nothing and sleeps)."""

from __future__ import annotations

import sys
import time

from mcp.server.mcpserver import MCPServer

server = MCPServer("hanging")


@server.tool()
def wait() -> str:
    """Wait for something that never comes."""
    time.sleep(3600)
    return "done"


@server.tool()
def ping() -> str:
    """Answer pong."""
    return "pong"


if __name__ == "__main__":
    if "--at-start" in sys.argv:
        time.sleep(3600)
    server.run("stdio")
