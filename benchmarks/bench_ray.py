"""Overhead of the Ray executor vs the local one: the same small job, side by side in one run.

    .venv/bin/python benchmarks/bench_ray.py                 # a local Ray cluster of --cpus CPUs
    .venv/bin/python benchmarks/bench_ray.py --address HOST:PORT   # a running cluster instead

The job (real Fashion-MNIST): train a zoo of --models MLPs, merge them into one hierarchical tree and
MergeMany, evaluate every node and leaf, each run in a fresh store home. A local warm-up run (imports, the
dataset cache) is not counted; the cluster's start-up and its first job (its worker processes start) are
printed apart; then --repeats rounds alternate local and Ray, and the best round of each gives the
per-phase ratios. Local runs twice per round: with torch's default threads and with one thread (what a Ray
unit with one CPU uses) — on a loaded machine the thread count alone changes the local time several-fold,
so ray/local1 with `--cpus 1` is the executor's own overhead. Checks that every run stored the same weights.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def run_job(spec, executor):
    from backend.jobs.runner import run_job as run
    from backend.jobs.spec import with_executor
    from store import jobs as store_jobs

    job_id = store_jobs.create_job(spec.kind, with_executor(spec.to_dict(), executor), spec.key())
    t0 = time.perf_counter()
    status = run(job_id)
    seconds = time.perf_counter() - t0
    job = store_jobs.get_job(job_id)
    if status != "done":
        raise SystemExit(f"{spec.kind} job {status}: {job.get('error')}")
    result = job.get("result")
    return (json.loads(result) if isinstance(result, str) else result), seconds


def study(home: Path, executor, args) -> dict:
    from backend.jobs.spec import EvaluateSpec, MergeSpec, TrainSpec
    from store.db import query_df

    os.environ["REBASIN_HOME"] = str(home)
    train = {"dataset": "fashion_mnist", "widths": args.widths, "epochs": args.epochs,
             "train_subset": args.train_subset}
    times = {}
    trained, times["train"] = run_job(TrainSpec(name="bench", train=train, n_models=args.models), executor)
    merged, times["merge"] = run_job(MergeSpec(model_ids=tuple(trained["model_ids"]),
                                               methods=("hierarchical", "merge_many")), executor)
    ids = sorted(set(trained["model_ids"]) | set(query_df("SELECT id FROM models WHERE level > 0")["id"].tolist()))
    _, times["evaluate"] = run_job(EvaluateSpec(model_ids=tuple(int(i) for i in ids),
                                                eval={"subset": args.subset, "lipschitz_points": 20}), executor)
    times["total"] = sum(times.values())
    times["weights"] = sorted(query_df("SELECT weights FROM models")["weights"])
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=int, default=8)
    p.add_argument("--widths", type=lambda t: [int(w) for w in t.split(",")], default=[256, 128])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--train-subset", type=int, default=20000)
    p.add_argument("--subset", type=int, default=1000, help="test images per evaluation")
    p.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    p.add_argument("--address", default=None, help="a running cluster instead of a local one")
    p.add_argument("--repeats", type=int, default=2, help="alternating local/ray rounds (best of them is shown)")
    args = p.parse_args()

    import ray
    import torch

    root = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    os.environ.setdefault("REBASIN_DATA", str(root / "data"))
    print(f"job: {args.models} models {args.widths} x {args.epochs} epoch(s) on {args.train_subset} images, "
          f"hierarchical + MergeMany over all, evaluate {args.models * 2} models on {args.subset} test images; "
          f"torch threads here {torch.get_num_threads()}, os.cpu_count {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    threads = torch.get_num_threads()
    names = {"local": f"local, {threads} torch threads", "local1": "local, 1 torch thread",
             "ray": f"ray, {args.cpus} CPU(s) x 1 thread" if not args.address else "ray"}
    runs: dict[str, list[dict]] = {name: [] for name in names}
    warmup = study(root / "warmup", None, args)  # imports, dataset cache, first-call costs: not counted
    print(f"warm-up (local, not counted): {warmup['total']:.1f} s", flush=True)
    t0 = time.perf_counter()
    if args.address:
        ray.init(address=args.address, log_to_driver=False)
    else:
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    startup = time.perf_counter() - t0
    cold = study(root / "ray-cold", {"kind": "ray"}, args)  # the cluster starts its worker processes
    for r in range(args.repeats):  # alternate, so a change in the machine's load hits every variant
        for name in names:
            torch.set_num_threads(1 if name == "local1" else threads)
            runs[name].append(study(root / f"{name}-{r}", {"kind": "ray"} if name == "ray" else None, args))
        torch.set_num_threads(threads)
        print(f"round {r + 1}: " + ", ".join(f"{names[n]} {runs[n][-1]['total']:.1f} s" for n in names)
              + f"; load average {os.getloadavg()[0]:.1f}", flush=True)
    resources = {k: v for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU")}
    ray.shutdown()

    phases = ("train", "merge", "evaluate", "total")
    best = {name: {phase: min(run[phase] for run in rs) for phase in phases} for name, rs in runs.items()}
    print(f"Ray cluster: {resources}, start-up {startup:.1f} s (once per cluster, not per job); its first job "
          f"(worker processes starting) took {cold['total']:.1f} s")
    print(f"best of {args.repeats} alternating rounds (seconds), load average now {os.getloadavg()[0]:.1f}:")
    print(f"{'phase':<10}" + "".join(f"{names[n]:>26}" for n in names) + f"{'ray/local':>11}{'ray/local1':>11}")
    for phase in phases:
        print(f"{phase:<10}" + "".join(f"{best[n][phase]:>26.1f}" for n in names)
              + f"{best['ray'][phase] / best['local'][phase]:>11.2f}{best['ray'][phase] / best['local1'][phase]:>11.2f}")
    hashes = [warmup["weights"], cold["weights"], *(r["weights"] for rs in runs.values() for r in rs)]
    print(f"same stored weights in every run: {all(h == hashes[0] for h in hashes)} ({len(hashes[0])} models)")


if __name__ == "__main__":
    main()
