"""What one model loop records: the model's replies, the steps taken, the tokens used.

Plain data shared by ``agent.llm`` (which makes replies) and ``agent.loop`` (which counts
them), kept apart so that neither imports the other's module to name them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ModelReply", "Step", "Usage"]


@dataclass
class ModelReply:
    """The parts of a completion the loop uses, with tool calls as plain OpenAI dicts."""

    content: str | None
    tool_calls: list[dict[str, Any]]
    prompt_tokens: int
    completion_tokens: int
    cost: float | None


@dataclass
class Step:
    """One thing the loop did, for the user to see how an answer was found."""

    kind: str  # "model" | "tool" | "note"
    name: str
    detail: str
    seconds: float
    ok: bool = True


@dataclass
class Usage:
    """Model calls and tokens summed over a loop; cost when litellm knows the model's price."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, reply: ModelReply) -> None:
        """Count one completion; the cost stays unknown once any call's cost was unknown."""
        if self.calls == 0:
            self.cost = reply.cost
        elif self.cost is not None:
            self.cost = None if reply.cost is None else self.cost + reply.cost
        self.calls += 1
        self.prompt_tokens += reply.prompt_tokens
        self.completion_tokens += reply.completion_tokens
