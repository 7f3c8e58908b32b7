"""What the agent may read and run, and the state it keeps between questions.

The agent's modules (``ask``, ``offline``, ``tools``, ``reuse``, ``context``) take one
object, the Workbench, and read the model, the connections and the tools through it; it
is built from the parts the agent needs, never the Session:

- `sources`: the connections (``connection``, ``connections``, ``default_duckdb``,
  ``connections_frame``);
- `semantic`: the model and Cube queries (``model``, ``query``, ``compile_query``);
- `sql`, `preview`: the Session's SQL path (history, snippets, the router, the guard);
- `insights`, `mask_for_model`, `chart`: the analysis, governance and charts parts';
- `who`: who is asking (the index of data values differs from tenant to tenant).

It owns the agent's memory (opened on first use), the index of data values, and the tool
registry (``agent.registry.registry_of``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from aiser_jupyter.agent.vocabulary import ValueIndex
    from aiser_jupyter.config import Settings
    from aiser_jupyter.engines.connection import Connection
    from aiser_jupyter.memory import Memory
    from aiser_jupyter.result import Result
    from aiser_jupyter.semantic.layer import SemanticLayer
    from aiser_jupyter.semantic.model import SemanticModel
    from aiser_jupyter.sources.sources import Sources


class Workbench:
    """The agent's view of the notebook: data to read, queries to run, memory to keep."""

    def __init__(
        self,
        settings: Settings,
        sources: Sources,
        semantic: SemanticLayer,
        *,
        sql: Callable[..., Any],
        preview: Callable[..., Any],
        insights: Callable[..., Any],
        mask_for_model: Callable[..., Result],
        chart: Callable[..., Any],
        who: Callable[[], Any] = lambda: None,
    ):
        self.settings = settings
        self.sources = sources
        self.semantic = semantic
        self.sql = sql
        self.preview = preview
        self.insights = insights
        self.mask_for_model = mask_for_model
        self.chart = chart
        self.who = who
        self._memory: Memory | None = None
        self._values: tuple[SemanticModel, object, ValueIndex] | None = None

    # -- the data ------------------------------------------------------------------------

    @property
    def model(self) -> SemanticModel | None:
        return self.semantic.model

    @property
    def connections(self) -> dict[str, Connection]:
        return self.sources.connections

    def connection(self, name: str | None = None) -> Connection:
        return self.sources.connection(name)

    def default_duckdb(self) -> Connection:
        return self.sources.default_duckdb()

    def connections_frame(self) -> pd.DataFrame:
        return self.sources.connections_frame()

    def query(self, query: Any, connection: str | None = None, **options: Any) -> Result:
        return self.semantic.query(query, connection, **options)

    def compile_query(self, query: Any, connection: str | None = None, **options: Any) -> Any:
        return self.semantic.compile_query(query, connection, **options)

    # -- what the agent keeps ------------------------------------------------------------

    @property
    def memory(self) -> Memory:
        """The agent's memory (settings.memory: a SQLite file or a PostgreSQL URL), opened
        on first use."""
        if self._memory is None:
            from aiser_jupyter.memory import Memory
            from aiser_jupyter.security.context import current, subject_of

            self._memory = Memory.open(self.settings.memory)
            self._memory.owner = lambda: subject_of(current() or self.who())
        return self._memory

    def value_index(self) -> ValueIndex:
        """The values of the model's small dimensions, read once per model and requester, so
        that words like "enterprise" in a question become filters."""
        from aiser_jupyter.agent.vocabulary import ValueIndex

        model = self.model
        if model is None:
            raise ValueError("no semantic model loaded")
        who = self.who()  # values differ from tenant to tenant
        if self._values is None or self._values[0] is not model or self._values[1] != who:
            index = ValueIndex.build(model, lambda q: self.query(q).to_arrow())
            self._values = (model, who, index)
        return self._values[2]

    def auto_model_load(self, connection: str | None = None) -> SemanticModel:
        """Draft a semantic model of a connection's tables and load it (for the offline
        planner when none was loaded)."""
        import yaml

        return self.semantic.load_model(yaml.safe_load(self.semantic.auto_model(connection)))

    def close(self) -> None:
        """Stop the MCP servers the agent's tools started, and close the memory."""
        registry = getattr(self, "_tool_registry", None)
        if registry is not None:
            registry.close()
        if self._memory is not None:
            self._memory.close()
            self._memory = None
