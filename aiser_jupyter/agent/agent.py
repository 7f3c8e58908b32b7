"""The agent part: questions in plain language, the answers' feedback, memory and tools.

``Agent(workbench, record, changed)`` answers through `workbench` (a ``Workbench``: what
the agent may read and run), hands each asked question to `record` (a HistoryEntry for the
Session's history) and tells the views with `changed("answer")`. The agent's logic stays
in this package (``ask.py``), imported on first use; the tools registry in
``registry.py``, MCP's protocol in ``mcp/``.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from aiser_jupyter.agent.answer import Answer
    from aiser_jupyter.agent.workbench import Workbench
    from aiser_jupyter.history import HistoryEntry
    from aiser_jupyter.memory import Memory


class Agent:
    """``ask``, ``feedback``, ``remember`` and the agent's tools, for one Session."""

    def __init__(
        self,
        workbench: Workbench,
        record: Callable[[HistoryEntry], None],
        changed: Callable[[str], None] = lambda what: None,
    ):
        self.workbench = workbench
        self.record = record
        self.changed = changed
        self.last_answer: Answer | None = None

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
        answer = ask(
            self.workbench, question, model=model, offline=offline, run=run, previous=previous
        )
        self.last_answer = answer
        self._record("ask", question, answer)
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

    @property
    def memory(self) -> Memory:
        """The agent's memory: facts, rules, terms and answered questions (``%aiser memory``)."""
        return self.workbench.memory

    def remember(self, text: str) -> int:
        """Keep a fact, preference, rule or ``term = meaning`` for later questions; its id."""
        return self.memory.remember(text).id

    # -- tools -----------------------------------------------------------------------------

    def tool(
        self,
        fn: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
    ) -> Any:
        """Offer a Python function to the agent (``%%ask``), its arguments described by its
        type hints and docstring. Works as ``tool(fn)``, ``@tool`` and ``@tool(name=...)``;
        returns the function unchanged."""
        if fn is None:
            return lambda f: self.tool(f, name=name, description=description)
        from aiser_jupyter.agent.registry import registry_of

        registry_of(self.workbench).register(fn, name, description)
        return fn

    def mcp_add(
        self,
        name: str,
        command_or_url: str,
        args: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        start_timeout: float = 30.0,
    ) -> list[str]:
        """Start an MCP server (a command and its `args`, over stdio) or reach one (a
        streamable HTTP URL, with `headers` such as Authorization) and list its tools. They
        stay off for the agent until ``mcp_enable``. A command given as one string with
        spaces and no `args` is split like a shell line. A call may take `timeout` seconds,
        starting and listing `start_timeout`. Returns the tool names."""
        from aiser_jupyter.agent.registry import registry_of

        target, arguments = command_or_url, list(args)
        is_url = target.startswith(("http://", "https://"))
        if not is_url and not arguments and not os.path.exists(target):
            target, *arguments = shlex.split(target) or [target]
        tools = registry_of(self.workbench).add_server(
            name,
            target,
            arguments,
            env=env,
            headers=headers,
            timeout=timeout,
            start_timeout=start_timeout,
        )
        return [tool.name for tool in tools]

    def mcp_enable(self, name: str, tools: Sequence[str] | None = None) -> list[str]:
        """Let the agent call an MCP server's tools: all of them, or those named. Returns the
        names the model sees (``server__tool``)."""
        from aiser_jupyter.agent.registry import registry_of

        return registry_of(self.workbench).enable(name, tools)

    def mcp_disable(self, name: str, tools: Sequence[str] | None = None) -> None:
        """Take an MCP server's tools (all, or those named) away from the agent."""
        from aiser_jupyter.agent.registry import registry_of

        registry_of(self.workbench).disable(name, tools)

    def mcp_remove(self, name: str) -> None:
        """Stop an MCP server and forget it."""
        from aiser_jupyter.agent.registry import registry_of

        registry_of(self.workbench).remove(name)

    def tools_frame(self) -> pd.DataFrame:
        """Every tool the agent knows: its name as the model sees it, where it comes from
        (built-in, python, mcp:SERVER), whether it is enabled, and its description."""
        import pandas as pd

        from aiser_jupyter.agent.registry import registry_of

        columns = ["name", "source", "enabled", "description"]
        return pd.DataFrame(registry_of(self.workbench).rows(), columns=columns)

    def close(self) -> None:
        """Stop every MCP server the agent started and close its memory."""
        self.workbench.close()

    def _record(self, kind: str, text: str, answer: Answer) -> None:
        """An asked question in the kernel's history, beside the queries it ran."""
        from datetime import datetime

        from aiser_jupyter.history import HistoryEntry
        from aiser_jupyter.security.secrets import redact

        self.record(
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
