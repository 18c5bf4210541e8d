"""Connectivity settings without torch: the grid, the alignments and ConnectivityConfig (validated on
construction). The experiment plans and the CLI parser read them; `--help` must not import torch.
backend.connectivity re-exports everything here."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

ALIGNMENTS = ("none", "weight", "activation")
MATCHERS = ("weight", "activation")
SPLITS = ("train", "test")
VERSION = 1  # bump when the curve computation changes: it is part of the config key
DEFAULT_GRID = tuple(round(i / 20, 4) for i in range(21))


def check_grid(grid) -> tuple[float, ...]:
    """Sorted distinct λ values in [0, 1] that include both endpoints (barriers need them)."""
    try:
        values = tuple(float(v) for v in grid)
    except (TypeError, ValueError):
        raise ValueError(f"the λ grid must be a list of numbers, got {grid!r}") from None
    if len(values) < 2 or any(not math.isfinite(v) or not 0.0 <= v <= 1.0 for v in values):
        raise ValueError("the λ grid needs at least two numbers, all in [0, 1]")
    if list(values) != sorted(set(values)):
        raise ValueError("the λ grid must be strictly increasing")
    if values[0] != 0.0 or values[-1] != 1.0:
        raise ValueError("the λ grid must start at 0 and end at 1 (the barrier compares against the endpoints)")
    return values


def parse_grid(text: str) -> tuple[float, ...]:
    """'21' -> 21 evenly spaced points; '0,0.25,0.5,0.75,1' -> those points."""
    text = text.strip()
    if "," not in text:
        try:
            n = int(text)
        except ValueError:
            raise ValueError(f"--lam-grid takes a point count like 21 or a list like 0,0.5,1, got {text!r}") from None
        if n < 2:
            raise ValueError(f"a λ grid needs at least 2 points, got {n}")
        return check_grid([round(i / (n - 1), 6) for i in range(n)])
    return check_grid([v for v in text.split(",") if v.strip()])


@dataclass(frozen=True)
class ConnectivityConfig:
    """What a curve is computed with; key() names the stored rows (with the two model ids)."""

    lam_grid: tuple = DEFAULT_GRID
    aligns: tuple = ALIGNMENTS
    repair: bool = False  # also compute every alignment followed by REPAIR
    images: int = 4096  # batch for activation matching and REPAIR statistics
    image_split: str = "train"
    data_seed: int = 0  # which images
    seed: int = 0  # weight matching's sweep order
    max_iter: int = 100
    test_subset: int | None = None  # None = the whole test split
    train_subset: int | None = None  # also evaluate on the first k training images; None = test only
    batch_size: int = 1000
    version: int = field(default=VERSION)

    def __post_init__(self):
        object.__setattr__(self, "lam_grid", tuple(float(v) for v in self.lam_grid))
        aligns = (self.aligns,) if isinstance(self.aligns, str) else tuple(self.aligns)
        object.__setattr__(self, "aligns", aligns)
        self.validate()

    def validate(self) -> None:
        check_grid(self.lam_grid)
        if not self.aligns or any(a not in ALIGNMENTS for a in self.aligns) or len(set(self.aligns)) != len(self.aligns):
            raise ValueError(f"alignments must be distinct values from {', '.join(ALIGNMENTS)}, got {list(self.aligns)}")
        if not isinstance(self.repair, bool):
            raise ValueError(f"repair must be true or false, got {self.repair!r}")
        for name in ("images", "max_iter", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (2 if name == "images" else 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.image_split not in SPLITS:
            raise ValueError(f"image_split must be one of {', '.join(SPLITS)}, got {self.image_split!r}")
        for name in ("data_seed", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        for name in ("test_subset", "train_subset"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer or None, got {value!r}")

    def variants(self) -> list[tuple[str, bool]]:
        """(alignment, repaired) pairs this config computes, in display order."""
        return [(a, r) for a in self.aligns for r in ((False, True) if self.repair else (False,))]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["lam_grid"], d["aligns"] = list(self.lam_grid), list(self.aligns)
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> ConnectivityConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown connectivity option(s): {', '.join(sorted(unknown))}")
        return cls(**dict(d))

    def key(self) -> str:
        from backend.jobs.spec import canonical_key

        return canonical_key(self.to_dict())
