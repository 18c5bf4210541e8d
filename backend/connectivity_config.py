"""Connectivity settings without torch: the grid, the alignments and ConnectivityConfig (validated on
construction). The experiment plans and the CLI parser read them; `--help` must not import torch.
backend.connectivity re-exports everything here."""

from __future__ import annotations

import math
from dataclasses import dataclass

from backend.options import Config, internal, option

ALIGNMENTS = ("none", "weight", "activation")
MATCHERS = ("weight", "activation")
SPLITS = ("train", "test")
ALIGN_LABELS = {"none": "naive (no alignment)", "weight": "weight matching", "activation": "activation matching"}
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
class ConnectivityConfig(Config):
    """What a curve is computed with; key() names the stored rows (with the two model ids)."""

    config_name = "connectivity"

    lam_grid: tuple[float, ...] = option(DEFAULT_GRID, "λ grid: a point count (21 = 0, 0.05, …, 1) or a comma list",
                                         label="λ grid (a point count or a comma list)", what="the λ grid",
                                         low=0.0, high=1.0, parse=parse_grid)
    aligns: tuple[str, ...] = option(ALIGNMENTS, "comma list of alignments π of B onto A", label="Alignments",
                                     what="alignments", flag="--align", choices=ALIGNMENTS, nonempty=True,
                                     distinct=True, show=ALIGN_LABELS.get)
    repair: bool = option(False, "also compute every alignment followed by REPAIR", label="Also with REPAIR")
    images: int = option(4096, "images for activation matching and REPAIR statistics",
                         label="Images for activation matching / REPAIR", low=2, step=512)
    image_split: str = option("train", "where those images come from", label="Split of those images", choices=SPLITS)
    data_seed: int = option(0, "which images (seeded draw)", label="Seed of the image draw", low=0)
    seed: int = option(0, "weight matching's seed (sweep order)", label="Weight matching seed", low=0)
    max_iter: int = option(100, "weight matching's sweeps at most", label="Weight matching sweeps (at most)", low=1)
    test_subset: int | None = option(None, "evaluate the curve on the first N test images", label="Test images",
                                     flag="--subset", low=1, none="the whole test split", step=500)
    train_subset: int | None = option(None, "also evaluate the curve on the first N training images",
                                      label="Training images", low=1, none="test split only", step=500)
    batch_size: int = option(1000, "evaluation batch size", label="Batch size", low=1)
    version: int = internal(VERSION, "the curve computation's version: part of the key")

    def check(self) -> None:
        check_grid(self.lam_grid)

    def variants(self) -> list[tuple[str, bool]]:
        """(alignment, repaired) pairs this config computes, in display order."""
        return [(a, r) for a in self.aligns for r in ((False, True) if self.repair else (False,))]
