"""The ``aiser`` command: ``aiser serve MODEL_DIR`` runs the Cube-compatible API in front;
``aiser alerts run MODEL_DIR`` checks a model's alerts outside a notebook."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from aiser_jupyter.errors import AiserError

DEFAULT_SECRET_ENV = "CUBEJS_API_SECRET"
"""Where Cube keeps its API secret, so that existing deployments' tokens keep working."""
SERVE_ARGS = "AISER_SERVE_ARGS"
CACHE_URL_ENV = "AISER_CACHE_URL"


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="aiser", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="serve a semantic model as Cube's REST API",
        description="Serve a Cube data model over HTTP (/cubejs-api/v1/load, /sql, /meta, "
        "/metrics), for Cube clients and dashboards.",
    )
    serve.add_argument("model", metavar="MODEL_DIR", help="a Cube YAML model: folder or file")
    serve.add_argument(
        "--connection",
        action="append",
        default=[],
        metavar="[NAME=]URL",
        help="a database URL or file the model reads (repeat for several; NAME matches a "
        "cube's data_source)",
    )
    serve.add_argument("--sample", action="store_true", help="load the sample retail tables")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=4000)
    serve.add_argument(
        "--secret-env",
        default=DEFAULT_SECRET_ENV,
        metavar="NAME",
        help=f"environment variable holding the JWT secret (default {DEFAULT_SECRET_ENV})",
    )
    serve.add_argument(
        "--no-auth", action="store_true", help="answer requests without a token (development)"
    )
    serve.add_argument(
        "--workers", type=int, default=1, help="Sessions answering queries, in threads"
    )
    serve.add_argument(
        "--processes",
        type=int,
        default=1,
        help="server processes sharing the port, each with its own Sessions and cache",
    )
    serve.add_argument("--cache-ttl", type=float, default=60.0, help="seconds answers are cached")
    serve.add_argument("--cache-size", type=int, default=1024, help="answers kept in the cache")
    serve.add_argument(
        "--cors-origin",
        action="append",
        metavar="ORIGIN",
        help="a web origin whose pages may call the API (repeat; default: any)",
    )
    serve.add_argument(
        "--continue-wait",
        type=float,
        default=5.0,
        help="seconds before a long query answers 'Continue wait'",
    )
    serve.add_argument(
        "--cache",
        default=os.environ.get(CACHE_URL_ENV) or None,
        metavar="redis://HOST:PORT/DB",
        help="a Redis every server process shares answers and running queries through "
        f"(default ${CACHE_URL_ENV}; none: each process caches its own)",
    )
    serve.add_argument(
        "--no-alerts", action="store_true", help="do not run the model's alerts.yml alongside"
    )
    alerts = commands.add_parser(
        "alerts",
        help="run alerts outside a notebook",
        description="Check the alerts of MODEL_DIR/alerts.yml on their schedules and when "
        "their tables change, and deliver their notifications, until stopped.",
    )
    alerts.add_argument("action", choices=["run"])
    alerts.add_argument("model", metavar="MODEL_DIR", help="a Cube YAML model: folder or file")
    alerts.add_argument("--alerts", metavar="FILE", help="the alerts file (default: alerts.yml)")
    alerts.add_argument(
        "--connection", action="append", default=[], metavar="[NAME=]URL", help="as for serve"
    )
    alerts.add_argument("--sample", action="store_true", help="load the sample retail tables")
    alerts.add_argument("--once", action="store_true", help="check every alert once, then exit")
    keys = commands.add_parser(
        "keys",
        help="encrypt data at rest: make, rotate or show the key",
        description="init: make a key (unless AISER_ENCRYPTION_KEY gives one) and encrypt the "
        "plain data files; rotate: re-encrypt every file with a new key (safe to interrupt "
        "and run again); status: each data file and its key.",
    )
    keys.add_argument("action", choices=["init", "rotate", "status"])
    keys.add_argument("--keyring", action="store_true", help="init: keep the key in the OS keyring")
    return top


def keys_run(args: argparse.Namespace) -> None:
    from aiser_jupyter.security import rotate

    if args.action == "init":
        rotate.init_keys(keyring_backend=args.keyring)
    elif args.action == "rotate":
        rotate.rotate_keys()
    else:
        for row in rotate.status():
            print(f"{row['kind']:10} {row['key'] or '-':16} {row['file']}")


def alerts_file(model: str, given: str | None = None) -> str | None:
    """The alerts file of a model: `given`, else alerts.yml (or .yaml) in the model's folder."""
    from pathlib import Path

    if given:
        return given
    folder = Path(model) if Path(model).is_dir() else Path(model).parent
    found = [folder / n for n in ("alerts.yml", "alerts.yaml") if (folder / n).is_file()]
    return str(found[0]) if found else None


def start_alerts(model: str, connections: Sequence[str], sample: bool, path: str) -> Any:
    """A Session of its own that checks the alerts of `path` now, then in the background
    (on their schedules, and when tables of its own live connections change)."""
    from aiser_jupyter.server.app import open_session

    session = open_session(model, connections, sample)
    try:
        made = session.alerts.load(path)
        print(f"aiser: {len(made)} alerts from {path}: {', '.join(a.name for a in made)}")
        for outcome in session.alerts.check():
            print(f"aiser: {outcome!r}", flush=True)
    except BaseException:
        session.close()
        raise
    return session


def alerts_run(args: argparse.Namespace) -> None:
    """``aiser alerts run MODEL_DIR``: check now, then on schedule and change until a signal."""
    import signal
    import threading

    path = alerts_file(args.model, args.alerts)
    if path is None:
        raise AiserError(f"no alerts.yml beside {args.model} (or give --alerts FILE)")
    session = start_alerts(args.model, args.connection, args.sample, path)
    try:
        if args.once:
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while not stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
    finally:
        session.close()


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    secret(args)
    where = f"http://{args.host}:{args.port}/cubejs-api/v1"
    print(f"aiser: serving {args.model} at {where}", flush=True)
    path = None if args.no_alerts else alerts_file(args.model)
    alerts = start_alerts(args.model, args.connection, args.sample, path) if path else None
    try:
        _run_server(args, uvicorn)
    finally:
        if alerts is not None:
            alerts.close()


def _run_server(args: argparse.Namespace, uvicorn: Any) -> None:
    if args.processes > 1:
        os.environ[SERVE_ARGS] = json.dumps(vars(args))
        uvicorn.run(
            f"{__name__}:app_from_env",
            factory=True,
            workers=args.processes,
            host=args.host,
            port=args.port,
            log_level="warning",
            access_log=False,
        )
    else:
        uvicorn.run(
            app(args), host=args.host, port=args.port, log_level="warning", access_log=False
        )


def secret(args: argparse.Namespace) -> str | None:
    """The JWT secret from the environment; none is an error unless ``--no-auth``."""
    if args.no_auth:
        return None
    value = os.environ.get(args.secret_env) or None
    if value is None:
        raise AiserError(
            f"No JWT secret: set the environment variable {args.secret_env} "
            "(or pass --no-auth to serve without authentication)"
        )
    return value


def app(args: argparse.Namespace) -> Any:
    from aiser_jupyter.server.app import create_app

    return create_app(
        args.model,
        secret=secret(args),
        connections=args.connection,
        sample=args.sample,
        workers=args.workers,
        cache_size=args.cache_size,
        cache_ttl=args.cache_ttl,
        continue_wait=args.continue_wait,
        cors_origins=args.cors_origin or ("*",),
        cache_url=args.cache,
    )


def app_from_env() -> Any:
    """The app of one of ``--processes`` server processes: the parent's arguments come
    through the environment (the secret stays where it was, in its own variable)."""
    return app(argparse.Namespace(**json.loads(os.environ[SERVE_ARGS])))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["mcp"]:  # ``aiser mcp serve …``: the MCP server has its own options
        from aiser_jupyter.mcp.__main__ import main as mcp_main

        return mcp_main(argv[1:])
    args = parser().parse_args(argv)
    try:
        if args.command == "keys":
            keys_run(args)
        else:
            alerts_run(args) if args.command == "alerts" else serve(args)
    except AiserError as exc:
        from aiser_jupyter.security.secrets import redact

        print(f"aiser: {type(exc).__name__}: {redact(str(exc))}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
