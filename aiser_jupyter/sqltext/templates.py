"""``{{ expression }}`` templates, for the parts of a query a parameter cannot be (identifiers)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiser_jupyter.errors import ParameterError


def has_template(sql: str) -> bool:
    return "{{" in sql or "{%" in sql


def render(sql: str, namespace: Mapping[str, Any]) -> str:
    """Render Jinja in `sql` with the notebook's variables; undefined names are errors."""
    import jinja2

    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
    )
    try:
        return env.from_string(sql).render(namespace)
    except jinja2.UndefinedError as exc:
        raise ParameterError(f"Template: {exc.message}") from None
    except jinja2.TemplateSyntaxError as exc:
        raise ParameterError(f"Template syntax error on line {exc.lineno}: {exc.message}") from None
