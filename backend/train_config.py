"""TrainConfig without torch: what a zoo is trained with, declared once (backend.options). The CLI's parser
and the Zoo page read the declaration; backend.train re-exports everything here."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from backend.datasets import DATASETS
from backend.options import Config, canonical_key, option

TRAIN_VERSION = 1  # bump when training's numbers change for the same config and seed

MAX_WIDTH = 16_384  # units per hidden layer; bigger MLPs would exhaust memory before they train
MAX_LAYERS = 32
MAX_PARAMS = 100_000_000  # per model (400 MiB of float32): checked before anything is allocated
_IN_FEATURES = {"cifar10": 3 * 32 * 32, "fashion_mnist": 28 * 28, "mnist": 28 * 28}
OPTIMIZERS = ("adam", "sgd")
REGS = ("none", "l1", "l2")


def _param_count(dataset: str, widths) -> int:
    sizes = (_IN_FEATURES.get(dataset, 3 * 32 * 32), *widths, 10)
    return sum(a * b + b for a, b in zip(sizes, sizes[1:], strict=False))


@dataclass(frozen=True)
class TrainConfig(Config):
    config_name = "training"

    dataset: str = option("cifar10", "dataset", label="Dataset", choices=DATASETS)
    widths: tuple[int, ...] = option((512, 512, 512, 256), "hidden widths, comma separated (the paper: 512,512,512,256)",
                                     label="Hidden widths", what="hidden widths", low=1, nonempty=True)
    epochs: int = option(10, "training epochs", label="Epochs", low=1)
    batch_size: int = option(512, "training batch size", label="Batch size", low=1, step=64)
    optimizer: str = option("adam", "optimizer", label="Optimizer", choices=OPTIMIZERS)
    lr: float = option(1e-3, "learning rate", label="Learning rate", above=0.0, format="%.5f", step=1e-4)
    momentum: float = option(0.9, "SGD momentum (SGD only)", label="Momentum (SGD)", low=0.0, below=1.0)
    reg: str = option("none", "weight penalty", label="Regularisation", choices=REGS,
                      show={"none": "none (plain zoo)", "l1": "L1", "l2": "L2"}.get)
    reg_strength: float = option(0.0, "strength λ of the penalty, added to the loss as λ·Σ|w| (L1) or λ·Σw² (L2)",
                                 label="Strength (λ of the penalty)", low=0.0, format="%.6f")
    augment: bool | None = option(None, "random crop + flip", label="Augmentation",
                                  none="on for CIFAR-10 only")
    train_subset: int | None = option(None, "train on the first N training samples", label="Train subset",
                                      low=1, none="whole split", step=1000)

    def check(self) -> None:
        if max(self.widths) > MAX_WIDTH or len(self.widths) > MAX_LAYERS:
            raise ValueError(f"at most {MAX_LAYERS} hidden layers of at most {MAX_WIDTH} units each, "
                             f"got {list(self.widths)}")
        if _param_count(self.dataset, self.widths) > MAX_PARAMS:
            raise ValueError(f"widths {list(self.widths)} give {_param_count(self.dataset, self.widths):,} "
                             f"parameters per model, more than the {MAX_PARAMS:,} this lab allows "
                             f"(about {MAX_PARAMS * 4 // 2**20} MiB)")
        if self.reg == "none" and self.reg_strength != 0:
            raise ValueError(f"reg_strength is {self.reg_strength} but reg is 'none'; choose reg 'l1' or 'l2'")

    @property
    def use_augment(self) -> bool:
        return self.augment if self.augment is not None else self.dataset == "cifar10"

    def key(self) -> str:
        """sha256 of the config, plus TRAIN_VERSION when above 1 (a bump renames every zoo and model, so a
        rerun retrains; version 1 adds nothing, so keys stored before versions existed stay valid)."""
        d = self.to_dict()
        if TRAIN_VERSION != 1:
            d["version"] = TRAIN_VERSION
        return canonical_key(d)


def seeds_for(base_seed: int, n: int) -> list[int]:
    """n distinct 31-bit seeds derived from base_seed by hashing (zoos with nearby bases don't overlap)."""
    if n < 0:
        raise ValueError(f"number of seeds must be >= 0, got {n}")
    seeds: list[int] = []
    counter = 0
    while len(seeds) < n:
        digest = hashlib.sha256(f"rebasin-seed:{base_seed}:{counter}".encode()).digest()
        seed = int.from_bytes(digest[:4], "big") & 0x7FFFFFFF
        if seed not in seeds:
            seeds.append(seed)
        counter += 1
    return seeds
