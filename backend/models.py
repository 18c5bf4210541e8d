"""The MLP every experiment uses, and how to rebuild one from a bare state dict.

Input: pixels in [0, 1], shape [B, C, H, W] (or already flat [B, C*H*W]). Per-channel mean/std
normalisation is the model's first op and lives in fixed buffers `mean` and `std`: part of the model
(so attacks and Lipschitz bounds work in pixel space), never trained and never permuted.

State-dict keys (the contract every other module relies on):
    mean                 [C]
    std                  [C]
    layers.{i}.weight    [out_i, in_i]   i = 0 .. L-1, layer L-1 is the classifier
    layers.{i}.bias      [out_i]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


@dataclass(frozen=True)
class MLPConfig:
    in_shape: tuple[int, int, int] = (3, 32, 32)  # C, H, W
    widths: tuple[int, ...] = (512, 512, 512, 256)  # hidden widths; "hidden 512, latent 256"
    num_classes: int = 10
    mean: tuple[float, ...] = CIFAR10_MEAN
    std: tuple[float, ...] = CIFAR10_STD

    def __post_init__(self):
        if len(self.in_shape) != 3 or min(self.in_shape) < 1:
            raise ValueError(f"in_shape must be (C, H, W) with positive sizes, got {self.in_shape}")
        if not self.widths or min(self.widths) < 1:
            raise ValueError(f"widths must be a non-empty list of positive ints, got {self.widths}")
        if len(self.mean) != self.in_shape[0] or len(self.std) != self.in_shape[0]:
            raise ValueError("mean/std need one value per input channel")
        if min(self.std) <= 0:
            raise ValueError("std must be positive")

    @property
    def in_features(self) -> int:
        return math.prod(self.in_shape)

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        return (self.in_features, *self.widths, self.num_classes)


class MLP(nn.Module):
    def __init__(self, config: MLPConfig = MLPConfig()):
        super().__init__()
        self.config = config
        self.register_buffer("mean", torch.tensor(config.mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(config.std, dtype=torch.float32))
        sizes = config.layer_sizes
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))

    def normalize(self, x: Tensor) -> Tensor:
        """[B, C, H, W] or [B, D] pixels in [0,1] -> [B, D] normalised features."""
        c, h, w = self.config.in_shape
        x = x.reshape(x.shape[0], c, h * w)
        x = (x - self.mean[None, :, None]) / self.std[None, :, None]
        return x.reshape(x.shape[0], c * h * w)

    def forward(self, x: Tensor) -> Tensor:
        h = self.normalize(x)
        for layer in self.layers[:-1]:
            h = torch.relu(layer(h))
        return self.layers[-1](h)  # [B, num_classes]


def config_from_state_dict(params: dict[str, Tensor], in_shape: tuple[int, int, int] | None = None) -> MLPConfig:
    """Infer the architecture from weight shapes; square images are assumed unless in_shape is given."""
    if "mean" not in params or "layers.0.weight" not in params:
        raise ValueError("not an MLP state dict: missing 'mean' or 'layers.0.weight'")
    n_layers = sum(1 for k in params if k.startswith("layers.") and k.endswith(".weight"))
    weights = [params[f"layers.{i}.weight"] for i in range(n_layers)]
    channels = params["mean"].numel()
    in_features = weights[0].shape[1]
    if in_shape is None:
        side = math.isqrt(in_features // channels)
        if side * side * channels != in_features:
            raise ValueError(f"cannot infer a square input shape from {in_features} features")
        in_shape = (channels, side, side)
    return MLPConfig(
        in_shape=tuple(in_shape),
        widths=tuple(w.shape[0] for w in weights[:-1]),
        num_classes=weights[-1].shape[0],
        mean=tuple(params["mean"].tolist()),
        std=tuple(params["std"].tolist()),
    )


def mlp_from_state_dict(params: dict[str, Tensor], in_shape: tuple[int, int, int] | None = None) -> MLP:
    """Build an MLP holding a *copy* of `params` (callers' tensors are never aliased or mutated)."""
    model = MLP(config_from_state_dict(params, in_shape))
    model.load_state_dict({k: v.detach().clone() for k, v in params.items()})
    return model.eval()


def state_dict_of(model: nn.Module) -> dict[str, Tensor]:
    """A detached CPU copy of a model's parameters and buffers."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
