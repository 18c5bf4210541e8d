"""Shared CLI plumbing: one-line argparse errors, list parsers, eval options, foreground/background runs."""

from __future__ import annotations

import argparse
import sys


class UsageError(Exception):
    """Raised instead of argparse's sys.exit so main() can return the code (and --help returns 0)."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


class ArgParser(argparse.ArgumentParser):
    """argparse, but a usage error is exactly one `error: …` line on stderr (no usage dump)."""

    def error(self, message: str):
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise UsageError(2)

    def exit(self, status: int = 0, message: str | None = None):
        if message:
            print(message.rstrip(), file=sys.stderr)
        raise UsageError(status)


def expected_errors() -> tuple[type[BaseException], ...]:
    """Errors the user can act on: printed as one line, never as a traceback."""
    from backend.datasets import DatasetUnavailable
    from backend.jobs.executors import ExecutorError
    from store.db import StoreBusy, StoreError

    return ValueError, OSError, DatasetUnavailable, StoreBusy, StoreError, ExecutorError


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def int_list(text: str) -> tuple[int, ...]:
    """'1,2,3' -> (1, 2, 3); every item a positive integer."""
    try:
        values = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"must be comma-separated positive integers, got {text!r}")
    return values


def name_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def flatten(groups) -> list:
    """Repeatable list options (`--x a,b --x c`) -> one flat list."""
    return [v for group in groups or [] for v in group]


def add_eval_options(parser: argparse.ArgumentParser) -> None:
    """One option per EvalConfig field, derived from its declaration (backend/evaluate/config.py)."""
    from backend.evaluate.config import EvalConfig
    from backend.options import add_arguments

    add_arguments(parser, EvalConfig, title="evaluation")


def eval_config_from_args(args: argparse.Namespace) -> dict:
    """The EvalConfig dict the options ask for (validated; unset options keep the protocol's defaults)."""
    from backend.evaluate.config import EvalConfig
    from backend.options import values_from_args

    return EvalConfig.from_dict(values_from_args(args, EvalConfig)).to_dict()


def add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--background", action="store_true",
                        help="start a worker process and return at once (watch it with `jobs show ID`)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines (foreground runs)")
    add_executor_options(parser)


def add_executor_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--executor", choices=("local", "ray"), default="local",
                        help="where the work units run: in the job's process (local, default) or as tasks on a "
                             "Ray cluster (ray; needs the lab's ray extra)")
    parser.add_argument("--ray-address", default=None, metavar="HOST:PORT",
                        help="the Ray cluster's head (GCS) address, or 'auto'; default RAY_ADDRESS, else the cluster "
                             "`ray start` runs on this machine, else a local one started for the job")


def executor_from_args(args: argparse.Namespace) -> dict | None:
    """The executor settings the options ask for, checked before anything touches the store (Ray installed,
    the address answers); None for the local executor."""
    kind = getattr(args, "executor", "local") or "local"
    address = getattr(args, "ray_address", None)
    if kind == "local" and not address:
        return None
    from backend.jobs.executors import check_executor

    check_executor(kind, address)
    return {"kind": kind, "address": address}


def run_spec(spec, args: argparse.Namespace) -> tuple[int, dict | None]:
    """Run a job: in this process (recorded as a job row, progress lines on stdout) or as a worker.

    Returns (exit code, the job's result dict when it finished here and succeeded).
    """
    spec.validate()
    executor = executor_from_args(args)  # a bad cluster address fails here, before the store is touched
    from backend.jobs import queue
    from backend.jobs.preflight import check_inputs
    from backend.jobs.spec import with_executor
    from store import jobs as store_jobs

    if args.background:  # submit_job checks the input before it records anything
        job_id, joined = queue.submit_job(spec, executor)
        if joined:
            print(f"the same job is already queued or running as job {job_id}; not starting another "
                  f"(watch it with `jobs show {job_id}`)")
            return 0, None
        from backend.jobs.runner import log_path

        print(f"job {job_id} started in the background (log: {log_path(job_id)})")
        return 0, None
    from backend.jobs.runner import run_job

    check_inputs(spec)  # models, trees and datasets exist before any row is written
    running = store_jobs.find_active_job(spec.key())
    if running is not None:  # identical work at once would compute twice and race for the same rows
        raise ValueError(f"the same job is already queued or running as job {running}; wait for it "
                         f"(`jobs show {running}`) or cancel it (`jobs cancel {running}`)")
    job_id = store_jobs.create_job(spec.kind, with_executor(spec.to_dict(), executor), spec.key())
    echo = None if args.quiet else (lambda line: print(line, flush=True))
    status = run_job(job_id, echo=echo)
    return finish_message(job_id, status)


def finish_message(job_id: int, status: str) -> tuple[int, dict | None]:
    """Exit code and result of a job that ran here; a failure is one `error:` line on stderr."""
    from store import jobs as store_jobs

    job = store_jobs.get_job(job_id)
    if status == store_jobs.JobStatus.DONE:
        return 0, job.get("result") or {}  # get_job decodes the JSON columns
    if status == store_jobs.JobStatus.CANCELLED:
        print(f"error: job {job_id} was cancelled", file=sys.stderr)
        return 1, None
    print(f"error: {job.get('error') or 'the job failed'}", file=sys.stderr)
    return 2, None
