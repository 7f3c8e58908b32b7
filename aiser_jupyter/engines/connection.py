"""A named connection: what the user connected to, shown without secrets, and its engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiser_jupyter.security.secrets import redact_url

if TYPE_CHECKING:
    import pyarrow as pa

    from aiser_jupyter.engines.base import Engine


@dataclass(eq=False)
class Connection:
    name: str
    engine: Engine = field(repr=False)
    url: str = field(repr=False)
    tables: list[str] = field(default_factory=list)
    """Tables this connection was given by `connect` (files, DataFrames) rather than found."""

    @property
    def kind(self) -> str:
        return self.engine.kind

    @property
    def display_url(self) -> str:
        return redact_url(self.url)

    def columns(self) -> pa.Table:
        return self.engine.columns()

    def close(self) -> None:
        self.engine.close()

    def __repr__(self) -> str:
        return f"Connection(name={self.name!r}, kind={self.kind!r}, url={self.display_url!r})"
