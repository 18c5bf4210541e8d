"""What an evaluation measures: a frozen, hashable config so results are cached (and never mixed) by key."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields

from backend.metrics import ALL_METRICS, GRIDS, KNOWN_METRICS, METRICS, versions

# Strong attacks (upper bounds on robust accuracy) and certification (lower bounds), issue 12: opt-in metrics of
# the catalogue (default=False), on the DeepFool grids so each bracket lines up with DeepFool's curve.
STRONG_METRICS = tuple(name for name in KNOWN_METRICS if name not in ALL_METRICS)
STRONG_VERSION = 1  # part of the key of configs with strong metrics (as first stored); per-metric: Metric.version
CERTIFY_METHODS = ("ibp", "crown")
# Fields added after the first protocol: left out of to_dict() (and so of the key) while at their defaults, so
# every config that does not use them keeps the key (and the cached results) it always had.
_OPTIONAL_DEFAULTS = {"pgd_steps": 40, "apgd_steps": 100, "attack_restarts": 1, "attack_seed": 0,
                      "certify_method": "crown"}

LINF_EPS = tuple(round(0.002 * i, 6) for i in range(11))  # 0 .. 0.02, pixel units
L2_EPS = tuple(round(0.05 * i, 6) for i in range(11))  # 0 .. 0.5
NOISE_SIGMA = (0.0, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2)

_GRIDS = GRIDS  # the parameter grids of the catalogue's curve metrics


# pixels lie in [0, 1]: an L-inf budget or noise σ above 1 changes nothing more; the largest L2 distance in
# [0, 1]^D is sqrt(D) (55.4 for CIFAR-10's 3072 values)
_GRID_LIMITS = {"fgsm_eps": 1.0, "deepfool_linf_eps": 1.0, "noise_sigma": 1.0, "deepfool_l2_eps": 56.0}


@dataclass(frozen=True)
class EvalConfig:
    metrics: tuple[str, ...] = ALL_METRICS
    subset: int | None = None  # None = whole test split; n = its first n samples (fixed order)
    fgsm_eps: tuple[float, ...] = LINF_EPS
    deepfool_linf_eps: tuple[float, ...] = LINF_EPS
    deepfool_l2_eps: tuple[float, ...] = L2_EPS
    deepfool_steps: int = 50
    deepfool_candidates: int = 10
    deepfool_overshoot: float = 0.02
    noise_sigma: tuple[float, ...] = NOISE_SIGMA
    noise_seed: int = 0
    lipschitz_points: int = 100
    lipschitz_radius: float = 0.1
    batch_size: int = 1000
    pgd_steps: int = 40
    apgd_steps: int = 100
    attack_restarts: int = 1
    attack_seed: int = 0
    certify_method: str = "crown"

    def __post_init__(self):
        # JSON round trips give lists; store tuples of floats so equal configs hash equally.
        object.__setattr__(self, "metrics", tuple(str(m) for m in self.metrics))
        for name in _GRIDS:
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        self.validate()

    def validate(self) -> None:
        """Raise ValueError with one readable sentence for a config no evaluation can run."""
        unknown = [m for m in self.metrics if m not in KNOWN_METRICS]
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; choose from {list(KNOWN_METRICS)}")
        if not self.metrics:
            raise ValueError("an evaluation needs at least one metric")
        if len(set(self.metrics)) != len(self.metrics):
            raise ValueError(f"metrics are listed twice: {list(self.metrics)}")
        if self.subset is not None and (isinstance(self.subset, bool) or int(self.subset) != self.subset
                                        or self.subset < 1):
            raise ValueError(f"subset must be None (whole test split) or a positive count, got {self.subset}")
        for name in _GRIDS:
            grid = getattr(self, name)
            if any(v < 0 for v in grid):
                raise ValueError(f"{name} must not contain negative values, got {list(grid)}")
            if any(v != v or v == float("inf") for v in grid):
                raise ValueError(f"{name} must contain finite numbers, got {list(grid)}")
            limit = _GRID_LIMITS.get(name)
            if limit is not None and any(v > limit for v in grid):
                raise ValueError(f"{name} goes beyond any meaningful pixel budget (pixels lie in [0, 1]): "
                                 f"at most {limit:g}, got {max(grid):g}")
        if len(self.fgsm_eps) + len(self.deepfool_linf_eps) + len(self.deepfool_l2_eps) \
                + len(self.noise_sigma) > 400:
            raise ValueError("the ε/σ grids hold more than 400 points in all; use fewer points")
        for metric in self.metrics:
            grid = METRICS[metric].grid
            if grid is not None and not getattr(self, grid):
                raise ValueError(f"metric {metric!r} needs a non-empty {grid}")
        if self.deepfool_steps < 1:
            raise ValueError(f"deepfool_steps must be at least 1, got {self.deepfool_steps}")
        if self.deepfool_candidates < 2:
            raise ValueError(f"deepfool_candidates must be at least 2, got {self.deepfool_candidates}")
        if self.deepfool_overshoot < 0:
            raise ValueError(f"deepfool_overshoot must be >= 0, got {self.deepfool_overshoot}")
        if self.lipschitz_points < 1:
            raise ValueError(f"lipschitz_points must be at least 1, got {self.lipschitz_points}")
        if not self.lipschitz_radius > 0:
            raise ValueError(f"lipschitz_radius must be positive, got {self.lipschitz_radius}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        for name in ("pgd_steps", "apgd_steps", "attack_restarts"):
            if int(getattr(self, name)) != getattr(self, name) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.certify_method not in CERTIFY_METHODS:
            raise ValueError(f"certify_method must be one of {list(CERTIFY_METHODS)}, got {self.certify_method!r}")

    def to_dict(self) -> dict:
        d = asdict(self)
        for name in ("metrics", *_GRIDS):
            d[name] = list(d[name])
        for name, default in _OPTIONAL_DEFAULTS.items():
            if d[name] == default:
                del d[name]
        if any(m in STRONG_METRICS for m in self.metrics):
            d["strong_version"] = STRONG_VERSION
        return d

    @classmethod
    def from_dict(cls, d: dict) -> EvalConfig:
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k != "strong_version"}  # derived from the metrics, not an option
        extra = sorted(set(d) - known)
        if extra:
            raise ValueError(f"unknown EvalConfig field(s) {extra}")
        return cls(**d)

    def key(self) -> str:
        """sha256 of the config and of the versions (those above 1) of the metrics it asks for: bumping a
        metric's version renames exactly the configs that include it, so only those are recomputed."""
        d = self.to_dict()
        if versions(self.metrics):
            d["versions"] = versions(self.metrics)
        canonical = json.dumps(d, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]
