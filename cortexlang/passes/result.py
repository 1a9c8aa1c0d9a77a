"""What a pass returns: its IR, and one line saying what it did or why it did not apply.

A pass that does not apply returns the very object it was given (`result.ir is before`), so a
pipeline tells "changed" by identity, never by comparing copies; the reason travels beside the
IR, not inside it. A pass that applies returns a new object, and its note says what it did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

IR = TypeVar("IR")


@dataclass(frozen=True)
class PassResult(Generic[IR]):
    ir: IR
    note: str

    def changed(self, before: object) -> bool:
        """Did the pass change `before`? Passes never mutate, so identity says it."""
        return self.ir is not before


def unchanged(ir: IR, reason: str) -> PassResult[IR]:
    """The result of a pass that does not apply: the same IR, and why."""
    return PassResult(ir, reason)
