"""One alert: what it measures, when it fires, where it tells; and a check's outcome.

The rules of firing: a check measures the source's value (the first column of its first
row), works out ``previous`` (the value at the last check) and ``change`` (relative change
since then), and evaluates the condition. The alert fires when the condition becomes true
(it was not true at the last check), not once per check while it stays true; it is armed
again when the condition is false at a check. Within `quiet` of its last firing it does not
fire (the check says ``quiet``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiser_jupyter.alerts.condition import Condition
from aiser_jupyter.alerts.notify import Target


@dataclass
class CheckOutcome:
    """What one check saw and did: ``fired``, ``quiet`` (would have, within the quiet
    period), ``holds`` (true, already fired), ``clear`` (false) or ``failed``."""

    alert: str
    status: str
    value: Any = None
    previous: Any = None
    change: float | None = None
    error: str | None = None
    delivered: list[str] = field(default_factory=list)
    """Targets told now (shown forms); the others wait in the outbox for a retry."""
    failed: list[str] = field(default_factory=list)
    """Delivery errors (safe to show), retried later."""

    @property
    def fired(self) -> bool:
        return self.status == "fired"

    def __repr__(self) -> str:
        said = f"{self.alert}: {self.status} (value {self.value!r}"
        said += f", previous {self.previous!r}" if self.previous is not None else ""
        said += f", change {self.change:+.1%})" if self.change is not None else ")"
        if self.error:
            said += f" — {self.error}"
        if self.failed:
            said += " — not delivered yet: " + "; ".join(self.failed)
        return said


class Alert:
    """An alert as made by ``aiser.alert``: `check()` evaluates it now."""

    def __init__(
        self,
        name: str,
        source: Any,
        condition: Condition,
        targets: Sequence[Target],
        every: float | None,
        quiet: float | None,
        checker: Callable[[Alert], CheckOutcome],
    ):
        self.name, self.source, self.condition = name, source, condition
        self.targets = list(targets)
        self.every, self.quiet = every, quiet
        self.tables: frozenset[str] = frozenset()
        self._checker = checker

    def check(self) -> CheckOutcome:
        """Measure and evaluate now; fire (and notify) if the condition became true."""
        return self._checker(self)

    @property
    def notify(self) -> list[str]:
        """Where it tells, as shown (a webhook by its origin only)."""
        return [t.shown for t in self.targets]

    def __repr__(self) -> str:
        every = f", every {self.every:g}s" if self.every else ""
        return (
            f"Alert({self.name!r}: {self.condition.text!r} on {str(self.source)[:60]!r}{every},"
            f" notify {', '.join(self.notify) or 'nobody'})"
        )
