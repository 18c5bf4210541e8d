"""`python -m backend jobs {list,show,cancel,run,reap}`: look after recorded jobs."""

from __future__ import annotations

import argparse
import json

from backend.cli.common import finish_message, positive_int


def register(subparsers) -> None:
    from store.jobs import JOB_STATUSES

    p = subparsers.add_parser("jobs", help="list, show, cancel or run jobs",
                              description="Jobs are recorded in the store; background ones run in worker "
                                          "processes whose output goes to <home>/logs/JOB_ID.log.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = actions.add_parser("list", help="recent jobs")
    ls.add_argument("--status", choices=JOB_STATUSES, default=None)
    ls.add_argument("--limit", type=positive_int, default=50)
    show = actions.add_parser("show", help="one job: status, progress, error, result, log path")
    show.add_argument("id", type=positive_int)
    cancel = actions.add_parser("cancel", help="ask a job to stop; kill its worker after a grace period")
    cancel.add_argument("id", type=positive_int)
    cancel.add_argument("--grace", type=float, default=10.0, help="seconds to wait before killing")
    run_p = actions.add_parser("run", help="run a queued job here, in the foreground (rerun a failed one by repeating its command)")
    run_p.add_argument("id", type=positive_int)
    run_p.add_argument("--quiet", action="store_true", help="no progress lines")
    actions.add_parser("reap", help="mark jobs whose worker process died as failed")


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.2f}"
    if hasattr(value, "strftime"):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return " ".join(str(value).split())


def text_table(rows: list[dict]) -> str:
    """Rows as aligned text columns (numbers right, text left), without pandas."""
    columns = list(rows[0])
    cells = [[_cell(r[c]) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    numeric = [all(isinstance(r[c], int | float) or r[c] is None for r in rows) for c in columns]

    def line(values) -> str:
        return "  ".join(v.rjust(w) if n else v.ljust(w)
                         for v, w, n in zip(values, widths, numeric, strict=True)).rstrip()

    return "\n".join([line(columns), *(line(row) for row in cells)])


def run(args: argparse.Namespace) -> int:
    from backend.jobs import queue
    from backend.jobs.runner import log_path, run_job
    from store import jobs as store_jobs

    if args.action in ("list", "show"):
        queue.reap()  # a worker killed without a word must not be listed as running forever
    if args.action == "list":
        rows = store_jobs.job_records(status=args.status, limit=args.limit)
        print(text_table(rows) if rows else "no jobs")
        return 0
    if args.action == "reap":
        ids = queue.reap()
        print(f"marked failed: {', '.join(map(str, ids))}" if ids else "no dead workers")
        return 0
    job = store_jobs.get_job(args.id)
    if job is None:
        raise ValueError(f"job {args.id} does not exist")
    if args.action == "show":
        shown = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in job.items()}
        shown["log"] = str(log_path(args.id, create=False))
        print(json.dumps(shown, indent=2, default=str))
        return 0
    if args.action == "cancel":
        status = queue.cancel(args.id, grace=args.grace)
        print(f"job {args.id}: {status}")
        return 0
    if job["status"] != store_jobs.JobStatus.QUEUED:
        raise ValueError(f"job {args.id} is {job['status']}; only a queued job can be run")
    status = run_job(args.id, echo=None if args.quiet else (lambda line: print(line, flush=True)))
    code, result = finish_message(args.id, status)
    if result is not None:
        print(json.dumps(result))
    return code
