"""The agent's persistent memory: conversation, facts, glossary and rules, past episodes."""

from aiser_jupyter.memory.backends import MemoryFailed
from aiser_jupyter.memory.store import KINDS, Entry, Memory, Recall

__all__ = ["KINDS", "Entry", "Memory", "MemoryFailed", "Recall"]
