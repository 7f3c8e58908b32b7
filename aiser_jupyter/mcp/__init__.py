"""The Model Context Protocol, both ways: the agent uses tools of MCP servers (``client``), and
the Session's data is served as an MCP server to other AI clients (``server``).

Built on the official ``mcp`` SDK, imported only when a connection or a server is made.
"""
