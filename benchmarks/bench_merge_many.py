"""MergeMany of n default MLPs vs a hierarchical tree over the same n leaves (target: MergeMany <= 2x).

    .venv/bin/python benchmarks/bench_merge_many.py [--n 8] [--init random|trained] [--plain] [--threads 2]

Prints, side by side in one run: the tree's seconds (n - 1 pair matchings), MergeMany's seconds (the fast
rounds: running sum, Gram input-layer terms, similarities on --device) and their ratio. --plain also runs
the textbook loop (mean of the others rebuilt and matched every step, on the CPU) and checks that both
reach the same objective. --init trained trains the leaves for one epoch on a Fashion-MNIST subset
(default widths, 784 inputs) so they have real basins; random uses independent initialisations.
"""

from __future__ import annotations

import argparse
import os
import sys

if __name__ == "__main__":  # BLAS thread pools read these when numpy/torch load
    _threads = next((a.split("=")[1] for a in sys.argv if a.startswith("--threads=")), "2")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, _threads)

import time

import numpy as np
import torch

from backend.matching import IMPROVEMENT_RTOL, weight_matching
from backend.merge.common import mean_params
from backend.merge.merge_many import alignment_objective, merge_many
from backend.merge.tree import hierarchical_merge
from backend.models import MLP, MLPConfig, state_dict_of
from backend.permutation import apply_permutation, is_identity, spec_for_params


def plain_merge_many(models, seed=0, max_rounds=100):
    """The textbook loop (what merge_many did before): fresh mean of the others and a full matching per step."""
    spec = spec_for_params(models[0])
    aligned = [dict(m) for m in models]
    n = len(aligned)
    rng = np.random.default_rng(seed)
    trace, previous, rounds = [], alignment_objective(spec, aligned), 0
    for round_index in range(max_rounds):
        rounds = round_index + 1
        changed = False
        for i in rng.permutation(n):
            others = mean_params([aligned[j] for j in range(n) if j != i])
            match = weight_matching(spec, others, aligned[i], seed=int(rng.integers(2**31)))
            if not is_identity(match.perm):
                aligned[i] = apply_permutation(spec, match.perm, aligned[i])
                changed = True
        trace.append(alignment_objective(spec, aligned))
        improved = trace[-1] > previous + IMPROVEMENT_RTOL * max(1.0, abs(previous))
        previous = trace[-1]
        if not changed or not improved:
            break
    return trace, rounds


def leaves(n: int, init: str) -> list[dict]:
    if init == "random":
        out = []
        for s in range(n):
            torch.manual_seed(s)
            out.append(state_dict_of(MLP(MLPConfig())))
        return out
    from backend.train import TrainConfig, train_models

    config = TrainConfig(dataset="fashion_mnist", epochs=1, train_subset=10_000)
    return [m.params for m in train_models(config, list(range(n)), device="cpu")]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--init", choices=("random", "trained"), default="random")
    parser.add_argument("--plain", action="store_true", help="also time the textbook loop (slow)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    models = leaves(args.n, args.init)
    sizes = " -> ".join(str(models[0][f"layers.{i}.weight"].shape[1]) for i in range(len(models[0]) // 2 - 1))
    print(f"MergeMany vs tree, {args.n} {args.init} MLPs ({sizes} -> ...), device {args.device}, "
          f"{args.threads} thread(s), torch {torch.__version__}")
    t0 = time.perf_counter()
    nodes = hierarchical_merge(models)
    t_tree = time.perf_counter() - t0
    sweeps = sum(node.match.sweeps for node in nodes if node.match is not None)
    t0 = time.perf_counter()
    fast = merge_many(models, device=args.device)
    t_fast = time.perf_counter() - t0
    print(f"tree of {args.n}:      {t_tree:8.1f} s  ({args.n - 1} pair matchings, {sweeps} sweeps)")
    print(f"MergeMany (fast): {t_fast:8.1f} s  ({fast.rounds} rounds, objective {fast.objective_trace[-1]:.6f})")
    print(f"MergeMany / tree: {t_fast / t_tree:8.2f}x  (target <= 2x)")
    if args.plain:
        t0 = time.perf_counter()
        trace, rounds = plain_merge_many(models)
        t_plain = time.perf_counter() - t0
        agree = abs(trace[-1] - fast.objective_trace[-1]) <= 1e-9 * abs(trace[-1])
        print(f"MergeMany (plain): {t_plain:7.1f} s  ({rounds} rounds, objective {trace[-1]:.6f}); "
              f"plain / fast {t_plain / t_fast:.2f}x; same objective: {agree}")


if __name__ == "__main__":
    main()
