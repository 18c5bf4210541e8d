"""Overhead of the Ray executor vs the local one: the same small job, side by side in one run.

    .venv/bin/python benchmarks/bench_ray.py                 # a local Ray cluster of --cpus CPUs
    .venv/bin/python benchmarks/bench_ray.py --address HOST:PORT   # a running cluster instead

The job (real Fashion-MNIST): train a zoo of --models MLPs, merge them into one hierarchical tree and
MergeMany, evaluate every node and leaf. It runs once with the local executor (in this process) and then
twice with the Ray executor in fresh store homes (the first Ray run pays for starting worker processes;
the second finds them warm). Prints per phase the wall seconds of each run, the ratios ray/local, the
cluster start-up time separately, and checks that both executors stored the same weights.
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
    args = p.parse_args()

    import ray
    import torch

    root = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    os.environ.setdefault("REBASIN_DATA", str(root / "data"))
    print(f"job: {args.models} models {args.widths} x {args.epochs} epoch(s) on {args.train_subset} images, "
          f"hierarchical + MergeMany over all, evaluate {args.models * 2} models on {args.subset} test images; "
          f"torch threads here {torch.get_num_threads()}, os.cpu_count {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    local = study(root / "local", None, args)
    t0 = time.perf_counter()
    if args.address:
        ray.init(address=args.address, log_to_driver=False)
    else:
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    startup = time.perf_counter() - t0
    cold = study(root / "ray-cold", {"kind": "ray"}, args)
    warm = study(root / "ray-warm", {"kind": "ray"}, args)
    resources = {k: v for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU")}
    ray.shutdown()

    print(f"Ray cluster: {resources}, start-up {startup:.1f} s (paid once per cluster, not per job)")
    print(f"{'phase':<10}{'local s':>10}{'ray cold s':>12}{'ray warm s':>12}{'cold/local':>12}{'warm/local':>12}")
    for phase in ("train", "merge", "evaluate", "total"):
        print(f"{phase:<10}{local[phase]:>10.1f}{cold[phase]:>12.1f}{warm[phase]:>12.1f}"
              f"{cold[phase] / local[phase]:>12.2f}{warm[phase] / local[phase]:>12.2f}")
    same = local["weights"] == cold["weights"] == warm["weights"]
    print(f"same stored weights on both executors: {same} ({len(local['weights'])} models)")


if __name__ == "__main__":
    main()
