"""A Cube-compatible HTTP API over the semantic layer: ``aiser serve`` and ``aiser.serve()``."""

from aiser_jupyter.server.app import create_app

__all__ = ["create_app"]
