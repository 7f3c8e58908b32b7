"""The agent's half of Session: ``ask``, its memory, and what the offline planner needs.

A mixin, like the semantic layer's, so Session keeps one public surface; the agent's
logic stays in this package (``ask.py``), imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from aiser_jupyter.agent.answer import Answer
    from aiser_jupyter.agent.vocabulary import ValueIndex
    from aiser_jupyter.config import Settings
    from aiser_jupyter.history import HistoryEntry
    from aiser_jupyter.memory import Memory
    from aiser_jupyter.semantic.model import SemanticModel


class AgentMethods:
    """Session methods for questions in plain language."""

    settings: Settings
    model: SemanticModel | None
    last_answer: Answer | None
    _memory: Memory | None
    _values: tuple[SemanticModel, object, ValueIndex] | None
    history: list[HistoryEntry]
    changed: Callable[[str], None]

    def ask(
        self,
        question: str,
        model: str | None = None,
        *,
        offline: bool = False,
        run: bool = True,
        new: bool = False,
    ) -> Answer:
        """Answer a business question from the data: through the semantic layer and read-only
        SQL, with the configured model or the offline planner. A question that reads as a
        follow-up ("now by month") refines the last answer, unless `new`."""
        from aiser_jupyter.agent.ask import ask

        previous = None if new else self.last_answer
        answer = ask(self, question, model=model, offline=offline, run=run, previous=previous)
        self.last_answer = answer
        self.record("ask", question, answer)
        self.changed("answer")
        return answer

    def feedback(self, good: bool, answer: Answer | None = None) -> Answer:
        """Say whether an answer (the last one by default) was right: confirmed, the same
        question re-runs its query next time; rejected, it is never reused. Every view (the
        magic, the buttons, the sidebar) comes here, so the sidebar learns of it."""
        from aiser_jupyter.errors import AiserError

        answer = answer or self.last_answer
        if answer is None:
            raise AiserError("No answer yet: ask a question first (%%ask).")
        answer.feedback(good)
        self.changed("answer")
        return answer

    def record(self, kind: str, text: str, answer: Answer) -> None:
        """An asked question in the kernel's history, beside the queries it ran."""
        from datetime import datetime

        from aiser_jupyter.history import HistoryEntry
        from aiser_jupyter.security.secrets import redact

        self.history.append(
            HistoryEntry(
                at=datetime.now(),
                kind=kind,
                connection=answer.connection or "",
                engine="offline" if answer.offline else answer.model or "",
                sql=redact(text),
                rows=None if answer.result is None else answer.result.rowcount,
                elapsed=answer.seconds,
            )
        )
        self.changed("history")

    @property
    def memory(self) -> Memory:
        """The agent's memory (settings.memory: a SQLite file or a PostgreSQL URL), opened
        on first use."""
        if self._memory is None:
            from aiser_jupyter.memory import Memory

            self._memory = Memory.open(self.settings.memory)
        return self._memory

    def remember(self, text: str) -> int:
        """Keep a fact, preference, rule or ``term = meaning`` for later questions; its id."""
        return self.memory.remember(text).id

    def value_index(self) -> ValueIndex:
        """The values of the model's small dimensions, read once per model, so that words like
        "enterprise" in a question become filters."""
        from aiser_jupyter.agent.vocabulary import ValueIndex

        if self.model is None:
            raise ValueError("no semantic model loaded")
        who = getattr(self, "security_context", None)  # values differ from tenant to tenant
        if self._values is None or self._values[0] is not self.model or self._values[1] != who:
            index = ValueIndex.build(self.model, lambda q: self.query(q).to_arrow())
            self._values = (self.model, who, index)
        return self._values[2]

    def auto_model_load(self, connection: str | None = None) -> SemanticModel:
        """Draft a semantic model of a connection's tables and load it (for the offline
        planner when none was loaded)."""
        import yaml

        return self.load_model(yaml.safe_load(self.auto_model(connection)))
