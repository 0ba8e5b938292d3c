"""Undo/redo for the studio: one QUndoCommand that swaps Document snapshots.

Every undoable edit (band sliders, magnitude, speed, a new motion) is pushed as a StateCommand
holding the document's state before and after it. Consecutive moves of the same control within
MERGE_SECONDS merge into one step, so dragging a slider is one undo, not fifty.
"""

from __future__ import annotations

import time

from PySide6.QtGui import QUndoCommand

MERGE_SECONDS = 1.0
MERGE_ID = 1


class StateCommand(QUndoCommand):
    """Swap the document between two snapshots (see Document.snapshot / restore)."""

    def __init__(self, document, before, after, text: str, merge_key: str | None = None):
        super().__init__(text)
        self.document = document
        self.before = before
        self.after = after
        self.merge_key = merge_key
        self.stamp = time.monotonic()

    def redo(self) -> None:
        if not self.document.snapshot().same_as(self.after):
            self.document.restore(self.after)

    def undo(self) -> None:
        self.document.restore(self.before)

    def id(self) -> int:
        return MERGE_ID if self.merge_key is not None else -1

    def mergeWith(self, other) -> bool:
        if (not isinstance(other, StateCommand) or other.merge_key != self.merge_key
                or other.stamp - self.stamp > MERGE_SECONDS):
            return False
        self.after = other.after
        self.stamp = other.stamp
        return True
