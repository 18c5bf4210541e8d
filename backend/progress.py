"""Progress reporting and cooperative cancellation, shared by every long-running algorithm.

Algorithms take an optional `progress` callable and call it between steps. The job runner passes a
callable that records progress in the store and raises `Cancelled` when the user asked to stop, so
algorithms need no knowledge of jobs, processes or the store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


class Cancelled(Exception):
    """Raised from a progress callback to stop an algorithm between steps."""


@dataclass
class ProgressEvent:
    stage: str  # e.g. "train", "match", "merge", "fgsm"
    done: int
    total: int
    message: str = ""
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


ProgressFn = Callable[[ProgressEvent], None]


def report(progress: ProgressFn | None, stage: str, done: int, total: int, message: str = "", **metrics) -> None:
    """Call `progress` if given; a no-op otherwise so algorithms stay readable."""
    if progress is not None:
        progress(ProgressEvent(stage, done, total, message, dict(metrics)))
