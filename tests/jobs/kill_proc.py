"""A real worker (backend.worker.main) for a recorded merge job that SIGKILLs itself at a known write point.

python tests/jobs/kill_proc.py JOB_ID POINT N
  node       right after the N-th tree node is stored (weights, model row and merge row committed)
  merge_row  inside the N-th node's transaction: its model row is written, its merge row not yet
  round      right after the N-th MergeMany round checkpoint is written
"""

from __future__ import annotations

import os
import signal
import sys


def _die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def arm(point: str, n: int) -> None:
    count = [0]

    def after(function):
        def wrapped(*args, **kwargs):
            result = function(*args, **kwargs)
            count[0] += 1
            if count[0] == n:
                _die()
            return result
        return wrapped

    if point == "node":
        from backend.jobs import merge_step

        merge_step._store_node = after(merge_step._store_node)
    elif point == "merge_row":
        from store import trees

        original = trees.add_merge

        def add_merge(*args, **kwargs):
            count[0] += 1
            if count[0] == n:
                _die()
            return original(*args, **kwargs)

        trees.add_merge = add_merge
    elif point == "round":
        from store import checkpoints

        checkpoints.save_checkpoint = after(checkpoints.save_checkpoint)
    else:
        raise SystemExit(f"unknown kill point {point}")


if __name__ == "__main__":
    job_id, point, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    arm(point, n)
    from backend.worker import main

    sys.exit(main([job_id]))
