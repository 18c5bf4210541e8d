"""`python -m backend experiment --preset demo --dataset fashion_mnist [--epochs 3 ...] [--out report.md] [--background]`.

Runs the same experiment job the Report page starts: in the foreground by default (progress lines on
stdout, then the report), or queued for a worker process with --background. Rerunning resumes: finished
zoos, trees and evaluations are cache hits.

Every user field of the plan (backend.experiment.ExperimentPlan) is a flag derived from its declaration
(`--epochs 3`, `--trees '[[2,4],[1,8]]'`, `--eval '{"subset": 300}'`), applied over the preset like the fields of
`--overrides JSON`; one field set both ways is refused (one place says what a field is). Both end up as the
spec's overrides, so `--epochs 3` and `--overrides '{"epochs": 3}'` are the same job (same key).
"""

from __future__ import annotations

import argparse
import json
import sys

from backend.cli.common import add_executor_options, executor_from_args


def register(subparsers) -> argparse.ArgumentParser:
    from backend.datasets import DATASETS
    from backend.experiment import PRESETS, ExperimentPlan
    from backend.options import add_arguments

    p = subparsers.add_parser("experiment", help="run a whole study preset (train, merge, evaluate, report)",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", choices=list(PRESETS), default="demo", help="experiment size (default: demo)")
    p.add_argument("--dataset", choices=list(DATASETS), default=None,
                   help="dataset (default: the preset's — cifar10 for paper, fashion_mnist otherwise)")
    p.add_argument("--out", default=None, help="also write the report here (.md or .html)")
    p.add_argument("--overrides", default=None, help="JSON object of plan fields, e.g. '{\"epochs\": 2}' (a field "
                   "set here may not also be set by its own flag)")
    p.add_argument("--background", action="store_true", help="queue the job for a worker and return at once")
    p.add_argument("--estimate", action="store_true", help="print the time estimate and exit")
    add_executor_options(p)
    add_arguments(p, ExperimentPlan, skip=PLAN_SKIP, title="plan (over the preset's)", defaults="from the preset")
    p.set_defaults(func=run)
    return p


PLAN_SKIP = ("dataset",)  # the plan fields chosen by their own option (--dataset); the preset is --preset


def plan_overrides(args) -> dict:
    """--overrides JSON plus the plan flags set on the command line, as the spec's JSON overrides."""
    from backend.experiment import ExperimentPlan
    from backend.options import cli_flags, jsonable, values_from_args

    overrides = json.loads(args.overrides) if getattr(args, "overrides", None) else {}
    if not isinstance(overrides, dict):
        raise ValueError("--overrides must be a JSON object")
    flags = values_from_args(args, ExperimentPlan, skip=PLAN_SKIP)
    both = [name for name in flags if name in overrides]
    if both:
        flag = cli_flags(ExperimentPlan)[both[0]]
        raise ValueError(f"{both[0]} is set both by {flag} and in --overrides; set it in one place")
    return {**overrides, **jsonable(flags)}


def _fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def run(args) -> int:
    from backend.data import DatasetUnavailable, dataset_status
    from backend.estimate import describe, describe_range, estimate_breakdown, stored_text
    from backend.experiment import PRESETS, plan_for
    from backend.jobs.executors import ExecutorError
    from backend.jobs.spec import ExperimentSpec

    try:
        executor = None if args.estimate else executor_from_args(args)  # before the store is touched
        overrides = plan_overrides(args)
        dataset = args.dataset or PRESETS[args.preset].dataset
        spec = ExperimentSpec(preset=args.preset, dataset=dataset, overrides=overrides)
        spec.validate()
        plan = plan_for(spec.preset, spec.dataset, spec.overrides)
        if args.out and not args.out.lower().endswith((".md", ".markdown", ".html", ".htm")):
            raise ValueError(f"the report file must end in .md or .html, got {args.out!r}")
        if dataset_status(dataset) == "missing":
            raise DatasetUnavailable(f"{dataset} is neither on this machine nor downloadable; use "
                                     "--dataset fashion_mnist (Debian package dataset-fashion-mnist) offline")
        from backend.jobs.preflight import check_inputs

        check_inputs(spec, writes=not args.estimate)  # an estimate only reads: a read-only store is fine
        est = estimate_breakdown(plan)
    except json.JSONDecodeError as e:
        return _fail(f"--overrides is not valid JSON ({e.msg})")
    except (ValueError, DatasetUnavailable, ExecutorError) as e:
        return _fail(" ".join(str(e).split()))
    phases = ", ".join(f"{p} {describe(est[p]) if est[p] > 0 else 'none left'}" for p in ("train", "merge", "evaluate"))
    print(f"experiment {plan.preset} on {plan.dataset}: {plan.n_trained} models to train, "
          f"{est['n_evaluated']} to evaluate; estimate {describe_range(est, stored=False)} on {est['device']}, "
          f"{est['source']} rates ({phases})", flush=True)
    if stored_text(est["cached"]):  # why the estimate is short: a rerun recomputes nothing stored
        print(f"{stored_text(est['cached'])}: not recomputed, not in the estimate", flush=True)
    if args.estimate:
        return 0
    if args.background:
        from backend.jobs.queue import submit

        job_id = submit(spec, executor)
        print(f"queued as job {job_id}; follow it with `python -m backend jobs` or on the Report page")
        return 0
    return _foreground(spec, args.out, executor)


def _foreground(spec, out: str | None, executor: dict | None = None) -> int:
    from backend.jobs.runner import run_job
    from backend.jobs.spec import with_executor
    from store import jobs as store_jobs

    job_id = store_jobs.create_job(spec.kind, with_executor(spec.to_dict(), executor), spec.key())
    status = run_job(job_id, echo=lambda line: print(line, flush=True))
    job = store_jobs.get_job(job_id)
    if status != store_jobs.JobStatus.DONE:
        return _fail(f"job {job_id} {status}: {job.get('error') or 'stopped before the end'}", 1)
    result = job.get("result")  # get_job decodes the JSON columns
    path = result.get("report_path")
    if out:
        from backend.report_files import write_report

        try:
            path = write_report(int(result["experiment_id"]), out)
        except ValueError as e:
            return _fail(str(e))
    print(f"experiment {result['experiment_id']} done; report: {path}")
    return 0
