"""What a tool costs when it lives in an MCP server rather than in the kernel.

1. Call overhead: ``McpConnection.call`` of a tool (``add``) in a real stdio MCP server
   (tests/mcp_servers/tickets.py), median of 200 calls after one warm-up; baseline, same
   run: the same tool as a Python function registered with ``aiser.tool`` and run as the
   agent runs it (argument checking included). Printed: both, and their ratio.
2. Start: ``McpConnection.open`` (spawn, handshake, list tools) of the same server, median
   of 5; baseline: ``python -c "import mcp.server.mcpserver"`` (interpreter and SDK alone).
3. Our server: a read-only SQL query through ``python -m aiser_jupyter.mcp serve --sample``
   over stdio, median of 50; baseline: ``Session.sql(read_only=True)`` of the same query in
   process.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TICKETS = [sys.executable, str(ROOT / "tests" / "mcp_servers" / "tickets.py")]
SQL = "SELECT status, count(*) AS n FROM orders GROUP BY 1"


def paired_ms(subject, baseline, n: int) -> tuple[float, float]:
    """Median milliseconds of each, measured alternately so that load on the machine falls on
    both alike."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(n):
        for fn, kept in ((subject, times[0]), (baseline, times[1])):
            started = time.perf_counter()
            fn()
            kept.append((time.perf_counter() - started) * 1000)
    return statistics.median(times[0]), statistics.median(times[1])


def main() -> None:
    from aiser_jupyter.agent.mcp_client import McpConnection
    from aiser_jupyter.agent.registry import function_tool
    from aiser_jupyter.sessions import Session

    def add(a: int, b: int) -> int:
        """Add two whole numbers."""
        return a + b

    local = function_tool(add)
    connection = McpConnection("tickets", TICKETS[0], TICKETS[1:])
    connection.open()
    connection.call("add", {"a": 1, "b": 2})
    remote_ms, local_ms = paired_ms(
        lambda: connection.call("add", {"a": 1, "b": 2}), lambda: local.run({"a": 1, "b": 2}), 200
    )
    connection.close()
    print(
        f"call: MCP stdio {remote_ms:.3f} ms, in-kernel function {local_ms:.4f} ms, "
        f"ratio {remote_ms / local_ms:.0f}x"
    )

    opened = []
    start_ms, python_ms = paired_ms(
        lambda: opened.append(McpConnection("t", TICKETS[0], TICKETS[1:])) or opened[-1].open(),
        lambda: subprocess.run([sys.executable, "-c", "import mcp.server.mcpserver"], check=True),
        5,
    )
    for each in opened:
        each.close()
    print(
        f"start: open {start_ms:.0f} ms, python + import of the SDK's server {python_ms:.0f} ms, "
        f"ratio {start_ms / python_ms:.2f}x"
    )

    ours = McpConnection(
        "aiser", sys.executable, ["-m", "aiser_jupyter.mcp", "serve", "--sample"], timeout=60
    )
    ours.open()
    session = Session()
    session.sources.load_sample()
    served_ms, direct_ms = paired_ms(
        lambda: ours.call("run_sql", {"sql": SQL}), lambda: session.sql(SQL, read_only=True), 50
    )
    ours.close()
    session.close()
    print(
        f"our server: run_sql over stdio {served_ms:.2f} ms, Session.sql in process "
        f"{direct_ms:.2f} ms, ratio {served_ms / direct_ms:.2f}x"
    )


if __name__ == "__main__":
    main()
