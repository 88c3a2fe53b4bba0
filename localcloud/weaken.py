"""Weakened safety mechanisms, for proving that the trust report sees them: dev-only, never deployed.

Issue #13 asks that the report's figures change when the system changes. Each weakening here removes
one safety mechanism of the product for the length of one storm (``python -m localcloud.storm
--weaken NAME``), and names the storm figure that must then stop being zero. The product has no
switch for any of this (a "disable the lease" setting would be a backdoor in production): the local
cloud runs the Lambda handlers in the storm's own process, importing the layer's ``selfheal``
package once into ``sys.modules``, so replacing a method on a ``selfheal`` class here changes what
the handlers run, and only in that process. Nothing under layers/, functions/ or template.yaml
knows these exist.

Each weakening counts how often the handlers ran it in place of the mechanism (``hits``: a lease
refusal ignored, a budget take skipped, a re-read of the mode skipped): a storm in which that count
is 0 never reached the patch, and proved nothing about the mechanism whatever its figures say.
"""

from __future__ import annotations

import threading
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Weakening:
    name: str
    removes: str  # the mechanism, in words
    shows_in: str  # the storm figure that must become non-zero
    _patch: Callable[[Weakening], Callable[[], None]]
    hits: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _undo: Callable[[], None] | None = None

    def hit(self) -> None:
        with self._lock:
            self.hits += 1

    def apply(self) -> None:
        if self._undo is None:
            self._undo = self._patch(self)

    def undo(self) -> None:
        if self._undo is not None:
            self._undo()
            self._undo = None

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "removes": self.removes, "showsIn": self.shows_in, "hits": self.hits}


def _replace(owner: type, name: str, new: Any) -> Callable[[], None]:
    original = owner.__dict__[name]
    setattr(owner, name, new)

    def undo() -> None:
        setattr(owner, name, original)

    return undo


def _lease(weakening: Weakening) -> Callable[[], None]:
    """The lease taken and renewed as usual, but a refusal is ignored: a second run on a target goes
    on as if the target were free (what the frame would do with no lease step at all)."""
    from selfheal.errors import LeaseHeld, LeaseLost
    from selfheal.steps import Steps

    acquire, renew = Steps.acquire_lease, Steps._renew

    def acquire_lease(self: Steps, event: Any) -> dict[str, Any]:
        try:
            result: dict[str, Any] = acquire(self, event)
        except LeaseHeld:
            weakening.hit()
            request = self._request(event)
            return {"owner": request.request_id, "targetKey": request.target_key}
        return result

    def _renew(self: Steps, request: Any, seconds: int) -> None:
        try:
            renew(self, request, seconds)
        except LeaseLost:
            weakening.hit()

    undo_acquire = _replace(Steps, "acquire_lease", acquire_lease)
    undo_renew = _replace(Steps, "_renew", _renew)

    def undo() -> None:
        undo_renew()
        undo_acquire()

    return undo


def _budget(weakening: Weakening) -> Callable[[], None]:
    """The atomic hourly budget (a conditional write that lets exactly BudgetPerHour runs through)
    always has room. The guards' own count of audit rows stays: it is read by a whole burst at once,
    which is why the atomic take exists."""
    from selfheal.budget import Budgets

    def take_hourly(self: Budgets, runbook: str, request_id: str, limit: int, now: Any) -> None:
        weakening.hit()

    return _replace(Budgets, "take_hourly", take_hourly)


def _mode_reread(weakening: Weakening) -> Callable[[], None]:
    """The intent step (right before every mutating call) no longer reads the kill switch again: it
    acts on the mode the guards read at the start of the run (enforce, or the run would not have
    reached an intent step). The same code, with its module's ``read_mode`` bound to that answer."""
    from selfheal import steps
    from selfheal.models import Mode

    original = steps.Steps.intent

    def mode_read_at_the_start(ssm: Any, parameter: str) -> tuple[Mode, str | None]:
        weakening.hit()
        return Mode.ENFORCE, None

    intent = types.FunctionType(
        original.__code__,
        {**original.__globals__, "read_mode": mode_read_at_the_start},
        original.__name__,
        original.__defaults__,
        original.__closure__,
    )
    intent.__qualname__ = original.__qualname__
    return _replace(steps.Steps, "intent", intent)


WEAKENINGS: dict[str, Callable[[], Weakening]] = {
    "lease": lambda: Weakening(
        "lease",
        "one runbook per target at a time (the lease's conditional write)",
        "concurrentRuns",
        _lease,
    ),
    "budget": lambda: Weakening(
        "budget",
        "the atomic hourly budget per runbook (a conditional counter taken before acting)",
        "overBudget",
        _budget,
    ),
    "mode-reread": lambda: Weakening(
        "mode-reread",
        "the kill switch read again right before each mutating call",
        "mutationsAfterKillSwitch",
        _mode_reread,
    ),
}


def weakening(name: str) -> Weakening:
    try:
        return WEAKENINGS[name]()
    except KeyError:
        raise ValueError(f"unknown weakening {name!r}; known: {', '.join(sorted(WEAKENINGS))}") from None
