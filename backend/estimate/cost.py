"""The cost model: the work a job implies, counted in three phases, each in its own unit:

- train: multiply-adds of the training samples seen (models × epochs × samples × MACs per sample),
- merge: width³ summed over hidden layers, per weight-matching problem the method solves nominally
  as each method declares it in the merge registry (`matchings`: n − 1 for a hierarchical tree, 3 rounds × n
  for MergeMany, none for averaging),
- evaluate: multiply-adds of the forward-equivalent passes the metric protocol costs per model.

Job steps record these units with the time they took (store/rates.py), and estimates multiply them by seconds
per unit (machine.py). Plain arithmetic that imports no torch, so the job steps and the experiment job import
it cheaply (layer_sizes reads a dataset's shape from backend.data when called). The pass counts per metric are
constants of the protocol.
"""

from __future__ import annotations

import math

from backend.merge.registry import MERGE_METHODS

DEEPFOOL_MEAN_STEPS = 6  # DeepFool on ReLU MLPs converges in a few steps (batched until all done)

# Calibrated on the bracket preset's model (benchmarks/bench_bracket_preset.py, Fashion-MNIST, 256-128, 300 images):
# measured APGD L∞ (CE + DLR, 100 steps, bisecting grid search) = 15.2x the default protocol's evaluation time
# (this model: 16.3x); CROWN L∞ over the 11-point grid = 1.26x (this model: 1.25x).
STRONG_ATTACKED_SHARE = 0.5  # of the (grid eps × samples) pairs a strong attack still has to run on, roughly
CROWN_PASSES_PER_EPS = 3  # plus 2 per class


def split_sizes(dataset: str) -> tuple[int, int, tuple[int, ...], int]:
    """(train samples, test samples, input shape, classes) of a dataset."""
    from backend.data import dataset_info

    info = dataset_info(dataset)
    n_train, n_test = (50000, 10000) if dataset == "cifar10" else (60000, 10000)
    return n_train, n_test, tuple(info.in_shape), int(info.num_classes)


def layer_sizes(dataset: str, widths) -> tuple[int, ...]:
    _, _, in_shape, classes = split_sizes(dataset)
    return (math.prod(in_shape), *(int(w) for w in widths), classes)


def arch_key(sizes: tuple[int, ...]) -> str:
    return "-".join(map(str, sizes))


def macs(sizes: tuple[int, ...]) -> int:
    """Multiply-adds of one sample's forward pass through an MLP of these layer sizes."""
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


def units_left(total: int, done: int) -> int:
    """Units still to do: the stored ones never count for more than the job's own."""
    return total - min(max(done, 0), total)


# -- work units (what jobs record and estimates multiply) ----------------------------------------------


def train_units(sizes: tuple[int, ...], n_models: int, epochs: int, samples: int) -> float:
    """Training work: models × epochs × samples × multiply-adds per sample."""
    return float(n_models) * epochs * samples * macs(sizes)


def merged_nodes(method: str, n_leaves: int) -> int:
    """Nodes a tree of the method stores above its n leaves (each is evaluated), as the registry declares it."""
    return MERGE_METHODS[method].merged_nodes(n_leaves) if method in MERGE_METHODS else 1


def merge_units(method: str, n_leaves: int, widths) -> float:
    """Merge work: width³ per hidden layer, per nominal matching problem of the method."""
    cube = float(sum(int(w) ** 3 for w in widths))
    return MERGE_METHODS[method].matchings(n_leaves) * cube if method in MERGE_METHODS else 0.0


def eval_passes(ev, classes: int) -> float:
    """Forward-equivalent passes per test sample the protocol `ev` (an EvalConfig) costs."""
    metrics = set(ev.metrics)
    passes = 1.0  # accuracy + loss
    if "fgsm" in metrics or any(m.startswith("fgsm") for m in metrics):
        passes += 3 + len(ev.fgsm_eps)
    if any(m.startswith("noise") for m in metrics):
        passes += len(ev.noise_sigma)
    deepfool_step = 1 + min(ev.deepfool_candidates, classes)  # forward + batched Jacobian rows
    for norm, grid in (("deepfool_linf", ev.deepfool_linf_eps), ("deepfool_l2", ev.deepfool_l2_eps)):
        if any(m.startswith(norm) or m == "deepfool" for m in metrics):
            passes += min(DEEPFOOL_MEAN_STEPS, ev.deepfool_steps) * deepfool_step + len(grid)
    passes += strong_passes(ev, classes)
    return passes


def strong_passes(ev, classes: int) -> float:
    """Forward-equivalent passes per sample of the optional strong attacks and certificates (rough: attacks
    cost 3 passes per step (forward + backward) on the samples not fooled yet; CROWN about 2·classes + 3
    per eps, IBP 2; the L2 certificate a local Lipschitz bound per eps)."""
    passes = 0.0
    for metric in getattr(ev, "metrics", ()):
        kind, _, p = metric.rpartition("_")
        grid = ev.deepfool_linf_eps if p == "linf" else ev.deepfool_l2_eps
        k = max(len(grid) - 1, 0)
        if kind == "pgd":
            passes += 3 * ev.pgd_steps * ev.attack_restarts * k * STRONG_ATTACKED_SHARE
        elif kind == "apgd":
            passes += 2 * 3 * ev.apgd_steps * ev.attack_restarts * k * STRONG_ATTACKED_SHARE
        elif metric == "certified_linf":
            passes += k * (2 if ev.certify_method == "ibp" else 2 * classes + CROWN_PASSES_PER_EPS)
        elif metric == "certified_l2":
            passes += k * (1 + classes) * 10
    return passes


def eval_units(sizes: tuple[int, ...], ev, n_models: int, n_test: int) -> float:
    """Evaluation work: models × forward-equivalent multiply-adds of the protocol on the test subset."""
    classes = sizes[-1]
    subset = min(ev.subset or n_test, n_test)
    samples = subset * eval_passes(ev, classes)
    if any(m.startswith("lipschitz") for m in ev.metrics):
        samples += ev.lipschitz_points * (1 + classes) * 10
    return float(n_models) * samples * macs(sizes)


def connectivity_pairs(plan) -> int:
    """Parent pairs an experiment draws interpolation curves for: every hierarchical tree's merged nodes
    (variant trees included; a pair two trees share counts for each). 0 without connectivity."""
    if not getattr(plan, "connectivity", None):
        return 0
    return sum(n - 1 for _, n in plan.leaf_groups()) * (1 + len(getattr(plan, "variants", ())))


def connectivity_units(plan, sizes: tuple[int, ...], n_test: int, *, stored_pairs: int = 0
                       ) -> tuple[float, float]:
    """(forward units, merge units) of an experiment's interpolation curves: grid points × variants × test
    images for every merged node's parents (less the `stored_pairs` that have curves), plus one matching per
    alignment and pair. (0, 0) without."""
    pairs = units_left(connectivity_pairs(plan), stored_pairs)
    if not pairs:
        return 0.0, 0.0
    return interpolation_units(plan.connectivity, sizes, plan.widths, pairs, n_test)


def interpolation_units(config: dict, sizes: tuple[int, ...], widths, n_pairs: int, n_test: int,
                        n_train: int = 0) -> tuple[float, float]:
    """(forward units, merge units) of interpolation curves (a ConnectivityConfig dict) for n_pairs pairs:
    grid points × variants × images (test subset, plus the train subset when asked) forward per pair, and
    one matching per alignment and pair."""
    from backend.connectivity_config import ConnectivityConfig

    cc = ConnectivityConfig.from_dict(dict(config))
    images = min(cc.test_subset or n_test, n_test) + min(cc.train_subset or 0, n_train)
    points = len(cc.lam_grid) * len(cc.variants()) * images
    cube = float(sum(int(w) ** 3 for w in widths))
    return float(n_pairs * points * macs(sizes)), float(n_pairs * len(cc.aligns) * cube)
