"""What the four job steps (train_step, merge_step, evaluate_step, interpolate_step) share: the job's
executor, running a step's units on it with progress, recording how long the work took (so estimates learn
this machine's speed), and the check that a stored weights file is intact (a damaged one is no cache hit)."""

from __future__ import annotations

import torch

from backend.jobs.context import JobContext
from store import weights as store_weights


def record_work(ctx: JobContext, phase: str, arch: str, units: float, seconds: float, *,
                resumed: bool = False) -> None:
    """Record how long `units` of `phase` work took (store/rates.py), so estimates learn this machine's
    speed; best effort: a failed write never fails the job. Work done on a cluster (a remote executor) is
    not this machine's speed and is not recorded; nor is work `resumed` from what an interrupted run left
    (only part of `units` was done: its seconds still count as measured, not as overhead)."""
    executor = getattr(ctx, "executor", None)
    if executor is not None and not executor.in_process:
        return
    ctx.measured_seconds += seconds
    if resumed:
        return
    try:
        from store import rates as store_rates

        device = "cuda" if torch.cuda.is_available() else "cpu"
        store_rates.record_rate(phase, arch, device, torch.get_num_threads(), units, seconds, ctx.job_id)
    except Exception:  # noqa: BLE001 - the rate is a planning aid; the job's own work matters more
        pass


def executor_of(ctx: JobContext):
    """The job's executor (backend/jobs/executors.py); in-process when the context names none."""
    if getattr(ctx, "executor", None) is None:
        from backend.jobs.executors import LocalExecutor

        ctx.executor = LocalExecutor()
    return ctx.executor


class LazySpan:
    """A progress callback that claims its slice of the bar (sub(lo, hi)) when its unit starts, so units
    prepared in advance do not fight over the job's current span."""

    def __init__(self, sub, lo: float, hi: float):
        self.sub, self.lo, self.hi, self.fn = sub, lo, hi, None

    def __call__(self, event):
        if self.fn is None:
            self.fn = self.sub(self.lo, self.hi)
        return self.fn(event)


def run_units(ctx: JobContext, executor, units, on_result, *, before=None, section=True) -> None:
    """Run units on the job's executor. In process each unit runs inside its own progress section
    (before(i) first: a cancel check, curve starts); remote units are submitted at once and the job's
    message counts them as they come back."""
    if executor.in_process:
        for i, unit in enumerate(units):
            if before is not None:
                before(i)
            kwargs = unit.arguments()
            if kwargs is None:
                continue
            with ctx.section(unit.label) if section else _nullcontext():
                result = unit.fn(**kwargs, **unit.shared, **unit.local)
            on_result(i, result)
        return
    total = len(units)
    done = [0]
    ctx.check_cancel(force=True)

    def arrived(i, result):
        done[0] += 1
        with ctx.section(f"{done[0]} of {total} units back from the cluster"):
            on_result(i, result)

    executor.run(units, arrived, check_cancel=lambda: ctx.check_cancel())


def _nullcontext():
    from contextlib import nullcontext

    return nullcontext()


def weights_damaged(row: dict) -> bool:
    """Whether a stored model's weights file is missing or does not hash to its name."""
    return store_weights.verify_weights(row["weights"]) is not None
