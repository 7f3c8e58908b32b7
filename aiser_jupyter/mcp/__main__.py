"""``python -m aiser_jupyter.mcp serve …`` (the ``aiser mcp serve`` command): the data as an
MCP server over stdio, or over streamable HTTP with ``--port``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from aiser_jupyter.errors import AiserError
from aiser_jupyter.sources.targets import split_named


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="aiser mcp", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve connections and a semantic model over MCP")
    serve.add_argument("--model", help="a Cube YAML file or a folder of them")
    serve.add_argument(
        "--connection",
        action="append",
        default=[],
        metavar="[NAME=]URL",
        help="a database URL, a file or a named connection (repeat for several)",
    )
    serve.add_argument("--sample", action="store_true", help="load the sample retail tables")
    serve.add_argument(
        "--context",
        metavar="JSON",
        help='who the tools answer as, e.g. \'{"user": "ann", "tenant": "North"}\': the '
        "model's access policies filter and mask for them",
    )
    serve.add_argument("--port", type=int, help="serve streamable HTTP on this port, not stdio")
    serve.add_argument("--host", default="127.0.0.1", help="the address to listen on with --port")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    options = parser().parse_args(argv)
    from aiser_jupyter.mcp.server import build_server
    from aiser_jupyter.sessions import Session

    session = Session()
    try:
        for target in options.connection:
            name, url = split_named(target)
            session.connect(url, name=name)
        if options.sample:
            session.sources.load_sample()
        if options.model:
            session.load_model(options.model)
        if options.context:
            session.governance.set_context(context_claims(options.context))
        server = build_server(session)
    except AiserError as exc:
        from aiser_jupyter.security.secrets import redact

        session.close()
        print(f"aiser mcp: {type(exc).__name__}: {redact(str(exc))}", file=sys.stderr)
        return 2
    try:
        if options.port is None:
            server.run("stdio")
        else:
            server.run("streamable-http", host=options.host, port=options.port)
    finally:
        session.close()
    return 0


def context_claims(text: str) -> dict:
    """The --context option's JSON object (a clear error for anything else)."""
    import json

    try:
        claims = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AiserError(f"--context is not JSON: {exc}") from None
    if not isinstance(claims, dict):
        raise AiserError('--context must be a JSON object such as {"tenant": "North"}')
    return claims


if __name__ == "__main__":
    sys.exit(main())
