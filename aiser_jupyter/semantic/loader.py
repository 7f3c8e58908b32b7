"""Reading Cube YAML with line numbers, so that a broken model says where it is broken."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from aiser_jupyter.errors import AiserError

LINE = "__line__"
FILE = "__file__"


class ModelError(AiserError):
    """A data model that cannot be used: names the file, the line, the member and the problem."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        member: str | None = None,
    ):
        where = ":".join(str(p) for p in (file, line) if p is not None)
        parts = [p for p in (where, member) if p]
        super().__init__(f"{', '.join(parts)}: {message}" if parts else message)
        self.file, self.line, self.member = file, line, member


class _LineLoader(yaml.SafeLoader):
    """Records each mapping's first line (1-based) under ``__line__``."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = (key_node.tag, key_node.value) if isinstance(key_node, yaml.ScalarNode) else None
            if key is not None and key_node.value != "<<":
                if key in seen:  # PyYAML would keep the last one silently; Cube refuses it
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"duplicate key {key_node.value!r} (first at line {seen[key]})",
                        key_node.start_mark,
                    )
                seen[key] = key_node.start_mark.line + 1
        mapping = super().construct_mapping(node, deep=deep)
        mapping[LINE] = node.start_mark.line + 1
        return mapping


def read_yaml(text: str, file: str | None = None) -> dict[str, Any]:
    try:
        data = yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and context_mark is not None and context_mark.line + 1 != line:
            problem = f"{problem} ({context} started at line {context_mark.line + 1})"
        raise ModelError(f"not valid YAML: {problem}", file=file, line=line) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ModelError("expected a mapping with 'cubes' and/or 'views'", file=file, line=1)
    return _tag_file(data, file)


def _tag_file(node: Any, file: str | None) -> Any:
    if isinstance(node, dict):
        node[FILE] = file
        for value in node.values():
            _tag_file(value, file)
    elif isinstance(node, list):
        for item in node:
            _tag_file(item, file)
    return node


def read_model_source(source: str | Path | dict[str, Any]) -> list[dict[str, Any]]:
    """The raw documents of a model: one per YAML file (folders are read recursively)."""
    if isinstance(source, dict):
        return [source]
    path = Path(source).expanduser()
    if path.is_dir():
        files = sorted(
            f
            for f in [*path.rglob("*.yml"), *path.rglob("*.yaml")]
            # not .ipynb_checkpoints/ copies (Jupyter makes them of every edited file), nor .git/
            if not any(part.startswith(".") for part in f.relative_to(path).parts)
        )
        if not files:
            raise ModelError(f"no .yml or .yaml files in {path}")
    elif path.is_file():
        files = [path]
    else:
        raise ModelError(f"no such file or folder: {path}")
    return [read_yaml(f.read_text(encoding="utf-8"), str(f)) for f in files]
