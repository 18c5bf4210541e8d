"""`python -m backend.worker JOB_ID`: run one recorded job in this process (started by jobs.queue.submit).

Exit code 0 when the job ends done or cancelled, 1 when it failed (the error is on the job row, the
traceback in <home>/logs/JOB_ID.log), 2 for a bad command line.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -m backend.worker JOB_ID", file=sys.stderr)
        return 2
    from backend.jobs.queue import reap
    from backend.jobs.runner import run_job
    from store.jobs import JobStatus

    try:
        reap(dispatch=False)  # jobs of workers that died (and their temp files) are cleaned up before this one runs
    except Exception as err:  # noqa: BLE001 - housekeeping for others never stops this job
        print(f"reap failed: {err}", flush=True)

    # progress lines go to <home>/logs/JOB_ID.log: one every 5 s (and on stage changes) is plenty
    status = run_job(int(argv[0]), echo=lambda line: print(line, flush=True), echo_interval=5.0)
    print(f"job {argv[0]}: {status}", flush=True)
    try:
        from backend.jobs.queue import start_queued

        start_queued()  # this worker's place is free: start the next queued job
    except Exception as err:  # noqa: BLE001 - the next listing or submit starts it instead
        print(f"could not start queued jobs: {err}", flush=True)
    return 0 if status in (JobStatus.DONE, JobStatus.CANCELLED) else 1


if __name__ == "__main__":
    sys.exit(main())
