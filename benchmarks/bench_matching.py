"""Weight matching speed: backend.matching vs. a plain re-implementation of Ainsworth et al.'s loop.

Both run the same algorithm with the same seeded sweep order, so they must return the same
permutation; the plain one recomputes every similarity term from scratch each step (numpy float64),
ours caches terms whose other permutations did not change and gathers rows instead of columns.

    .venv/bin/python benchmarks/bench_matching.py [--pairs 3] [--widths 512,512,512,256] [--threads 2]
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
from scipy.optimize import linear_sum_assignment

from backend.matching import weight_matching
from backend.models import MLP, MLPConfig, state_dict_of
from backend.permutation import PermutationSpec, apply_permutation, random_permutation, spec_for_params


def plain_weight_matching(spec: PermutationSpec, params_a, params_b, seed: int = 0, max_iter: int = 100):
    """The textbook loop: every step rebuilds its similarity from every term it touches."""
    a = {k: v.double().numpy() for k, v in params_a.items()}
    b = {k: v.double().numpy() for k, v in params_b.items()}
    sizes = {p: a[axes[0][0]].shape[axes[0][1]] for p, axes in spec.perm_to_axes.items()}
    perm = {p: np.arange(n) for p, n in sizes.items()}
    names = spec.perm_names
    rng = np.random.default_rng(seed)
    sweeps = 0
    for sweep in range(max_iter):
        sweeps = sweep + 1
        improved = False
        for idx in rng.permutation(len(names)):
            p, n = names[idx], sizes[names[idx]]
            sim = np.zeros((n, n))
            for key, axis in spec.perm_to_axes[p]:
                w_b = b[key]
                for ax, q in enumerate(spec.axes_to_perm[key]):
                    if q is not None and ax != axis:
                        w_b = np.take(w_b, perm[q], axis=ax)
                w_a = np.moveaxis(a[key], axis, 0).reshape(n, -1)
                sim += w_a @ np.moveaxis(w_b, axis, 0).reshape(n, -1).T
            _, cols = linear_sum_assignment(sim, maximize=True)
            old, new = sim[np.arange(n), perm[p]].sum(), sim[np.arange(n), cols].sum()
            improved = improved or new > old + 1e-12 * max(1.0, abs(old))
            perm[p] = cols
        if not improved:
            break
    return {p: torch.from_numpy(v) for p, v in perm.items()}, sweeps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=3, help="independently initialised pairs per scenario")
    parser.add_argument("--widths", default="512,512,512,256", help="hidden widths (CIFAR-10 input, 10 classes)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = MLPConfig(widths=tuple(int(w) for w in args.widths.split(",")))
    print(f"weight matching, MLP {' -> '.join(map(str, config.layer_sizes))}, {args.threads} thread(s), "
          f"torch {torch.__version__}")

    rows = []
    for scenario in ("random init", "planted perm"):
        for pair in range(args.pairs):
            torch.manual_seed(2 * pair)
            a = state_dict_of(MLP(config))
            spec = spec_for_params(a)
            if scenario == "random init":
                torch.manual_seed(2 * pair + 1)
                b = state_dict_of(MLP(config))
            else:  # B = π(A) + noise: matching must find π⁻¹
                b = apply_permutation(spec, random_permutation(spec, a, seed=pair), a)
                b = {k: v + 1e-3 * torch.randn_like(v) for k, v in b.items()}
            start = time.perf_counter()
            ours = weight_matching(spec, a, b, seed=pair)
            t_ours = time.perf_counter() - start
            start = time.perf_counter()
            plain, plain_sweeps = plain_weight_matching(spec, a, b, seed=pair)
            t_plain = time.perf_counter() - start
            same = all(torch.equal(ours.perm[p], plain[p]) for p in spec.perm_names)
            rows.append((scenario, pair, t_ours, ours.sweeps, t_plain, plain_sweeps, t_plain / t_ours, same))

    header = f"{'scenario':<13} {'pair':>4} {'ours s':>8} {'sweeps':>6} {'plain s':>8} {'sweeps':>6} {'plain/ours':>10} {'same perm':>9}"
    print(header)
    print("-" * len(header))
    for scenario, pair, t_ours, s_ours, t_plain, s_plain, ratio, same in rows:
        print(f"{scenario:<13} {pair:>4} {t_ours:>8.3f} {s_ours:>6} {t_plain:>8.3f} {s_plain:>6} {ratio:>10.2f} {str(same):>9}")
    for scenario in ("random init", "planted perm"):
        sel = [r for r in rows if r[0] == scenario]
        mean_ours = sum(r[2] for r in sel) / len(sel)
        mean_plain = sum(r[4] for r in sel) / len(sel)
        print(f"{scenario}: mean {mean_ours:.3f} s/pair (ours) vs {mean_plain:.3f} s/pair (plain), "
              f"ratio {mean_plain / mean_ours:.2f}x, mean sweeps {sum(r[3] for r in sel) / len(sel):.1f}")


if __name__ == "__main__":
    main()
