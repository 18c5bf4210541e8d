"""What an evaluation measures: a frozen, hashable config so results are cached (and never mixed) by key."""

from __future__ import annotations

from dataclasses import dataclass

from backend.metrics import ALL_METRICS, GRIDS, KNOWN_METRICS, METRICS, grid_rows, versions
from backend.options import Config, canonical_key, option

# Strong attacks (upper bounds on robust accuracy) and certification (lower bounds), issue 12: opt-in metrics of
# the catalogue (default=False), on the DeepFool grids so each bracket lines up with DeepFool's curve.
STRONG_METRICS = tuple(name for name in KNOWN_METRICS if name not in ALL_METRICS)
STRONG_VERSION = 1  # part of the key of configs with strong metrics (as first stored); per-metric: Metric.version
CERTIFY_METHODS = ("ibp", "crown")

LINF_EPS = tuple(round(0.002 * i, 6) for i in range(11))  # 0 .. 0.02, pixel units
L2_EPS = tuple(round(0.05 * i, 6) for i in range(11))  # 0 .. 0.5
NOISE_SIGMA = (0.0, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2)

# pixels lie in [0, 1]: an L-inf budget or noise σ above 1 changes nothing more; the largest L2 distance in
# [0, 1]^D is sqrt(D) (55.4 for CIFAR-10's 3072 values)
_GRID_LIMITS = {"fgsm_eps": 1.0, "deepfool_linf_eps": 1.0, "noise_sigma": 1.0, "deepfool_l2_eps": 56.0}


def _grid(default: tuple[float, ...], name: str):
    """A curve metric's parameter grid, labelled from the metric catalogue."""
    row = grid_rows()[name]
    return option(default, f"comma list of {row.budget} ({row.param_unit})", label=f"{row.budget} grid ({row.param_unit})",
                  what=f"the {row.symbol or row.budget} grid", low=0.0)


@dataclass(frozen=True)
class EvalConfig(Config):
    config_name = "evaluation"

    metrics: tuple[str, ...] = option(
        ALL_METRICS, "comma list of metrics; optional strong attacks and certification, on the DeepFool grids: "
        + ",".join(name for name in KNOWN_METRICS if name not in ALL_METRICS),
        label="Metrics", choices=KNOWN_METRICS, nonempty=True, distinct=True, show=lambda m: METRICS[m].label)
    subset: int | None = option(None, "evaluate on the first N test samples, in a fixed order, for every model",
                                label="Test subset", low=1, none="whole test split", step=100)
    fgsm_eps: tuple[float, ...] = _grid(LINF_EPS, "fgsm_eps")
    deepfool_linf_eps: tuple[float, ...] = _grid(LINF_EPS, "deepfool_linf_eps")
    deepfool_l2_eps: tuple[float, ...] = _grid(L2_EPS, "deepfool_l2_eps")
    deepfool_steps: int = option(50, "DeepFool iterations", label="DeepFool steps", low=1)
    deepfool_candidates: int = option(10, "DeepFool candidate classes", label="DeepFool candidates", low=2)
    deepfool_overshoot: float = option(0.02, "DeepFool overshoot", label="DeepFool overshoot", low=0.0,
                                       format="%.3f")
    noise_sigma: tuple[float, ...] = _grid(NOISE_SIGMA, "noise_sigma")
    noise_seed: int = option(0, "seed of the Gaussian noise", label="Noise seed", low=0)
    lipschitz_points: int = option(100, "test points for the local Lipschitz bound", label="Local Lipschitz points",
                                   low=1)
    lipschitz_radius: float = option(0.1, "L2 radius of the local Lipschitz bound",
                                     label="Local Lipschitz radius (L2)", above=0.0, format="%.3f")
    batch_size: int = option(1000, "evaluation batch size", label="Evaluation batch size", low=1,
                             flag="--eval-batch-size")
    # added after the first protocol: left out of to_dict() (and so of the key) while at their defaults, so every
    # config that does not use them keeps the key (and the cached results) it always had
    pgd_steps: int = option(40, "PGD iterations per eps", label="PGD steps", low=1, keyed_at_default=False)
    apgd_steps: int = option(100, "APGD iterations per eps and loss", label="APGD steps", low=1,
                             keyed_at_default=False)
    attack_restarts: int = option(1, "random restarts of PGD/APGD", label="Attack restarts", low=1,
                                  keyed_at_default=False)
    attack_seed: int = option(0, "seed of the PGD/APGD random starts", label="Attack seed", low=0,
                              keyed_at_default=False)
    certify_method: str = option("crown", "L-inf certification bound", label="Certification bound",
                                 choices=CERTIFY_METHODS, keyed_at_default=False)

    def check(self) -> None:
        """What involves several fields: grid limits, the total grid size, a curve metric's grid."""
        for name in GRIDS:
            grid = getattr(self, name)
            limit = _GRID_LIMITS.get(name)
            if limit is not None and any(v > limit for v in grid):
                raise ValueError(f"{name} goes beyond any meaningful pixel budget (pixels lie in [0, 1]): "
                                 f"at most {limit:g}, got {max(grid):g}")
        if sum(len(getattr(self, name)) for name in GRIDS) > 400:
            raise ValueError("the ε/σ grids hold more than 400 points in all; use fewer points")
        for metric in self.metrics:
            grid = METRICS[metric].grid
            if grid is not None and not getattr(self, grid):
                raise ValueError(f"metric {metric!r} needs a non-empty {grid}")

    def to_dict(self) -> dict:
        d = super().to_dict()
        if any(m in STRONG_METRICS for m in self.metrics):
            d["strong_version"] = STRONG_VERSION
        return d

    @classmethod
    def from_dict(cls, d: dict) -> EvalConfig:
        return super().from_dict({k: v for k, v in d.items() if k != "strong_version"})  # derived from the metrics

    def key(self) -> str:
        """sha256 of the config and of the versions (those above 1) of the metrics it asks for: bumping a
        metric's version renames exactly the configs that include it, so only those are recomputed."""
        d = self.to_dict()
        if versions(self.metrics):
            d["versions"] = versions(self.metrics)
        return canonical_key(d)
