"""Many MLPs of one architecture as one stacked network: G state dicts -> one batched forward.

Used where a job evaluates many models that differ only in their weights (the λ points of an
interpolation curve, the leaves of a REPAIR target): one matmul over G·width output units for the
input layer (the wide one) and one bmm per deeper layer, instead of G separate forwards. Works on
plain state dicts with the keys of backend.models (mean, std, layers.{i}.weight/bias).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

Params = dict[str, Tensor]


def num_layers(params: Mapping[str, Tensor]) -> int:
    return sum(1 for k in params if k.startswith("layers.") and k.endswith(".weight"))


def stack_params(models: Sequence[Mapping[str, Tensor]]) -> Params:
    """{key: [G, ...]} for the layers; mean/std are taken from the first model (shared, not stacked)."""
    if not models:
        raise ValueError("nothing to stack: the list of models is empty")
    first = models[0]
    return {k: first[k] if k in ("mean", "std") else torch.stack([m[k] for m in models]) for k in first}


def unstack_params(stack: Mapping[str, Tensor], g: int) -> Params:
    """Model g of a stack as a plain state dict (new tensors)."""
    return {k: v.clone() if k in ("mean", "std") else v[g].clone() for k, v in stack.items()}


def normalized_inputs(params: Mapping[str, Tensor], x: Tensor) -> Tensor:
    """Pixels [N, C, H, W] (or [N, D]) in [0, 1] -> normalised flat features [N, D], as MLP.normalize."""
    mean, std = params["mean"], params["std"]
    c = mean.numel()
    flat = x.reshape(x.shape[0], c, -1).to(mean.dtype)
    return ((flat - mean.to(x.device)[None, :, None]) / std.to(x.device)[None, :, None]).reshape(x.shape[0], -1)


@dataclass
class FirstLayer:
    """The stack's first-layer weights in factored form: W_0[g] = scale[g] ⊙ Σ_k coef[g, k] · basis[k].

    Every λ point of a curve has W_0 = (1−λ)·W_A + λ·π(W_B) (times REPAIR's row scale), so the wide input
    layer needs only K = 2 matmuls for all G models instead of G: z_0[g] = scale[g] ⊙ Σ_k coef[g, k] · x W_kᵀ
    + b_0[g]. The stack's materialised layers.0.weight must agree (callers keep both in sync).
    """

    basis: Tensor  # [K, out, in]
    coef: Tensor  # [G, K]
    scale: Tensor | None = None  # [G, out]

    def preactivations(self, h: Tensor, bias: Tensor) -> Tensor:
        """h [N, in] -> [G, N, out]."""
        k, out, d = self.basis.shape
        zk = (h @ self.basis.reshape(k * out, d).T).reshape(h.shape[0], k, out)  # [N, K, out]
        z = torch.einsum("gk,nko->gno", self.coef.to(zk), zk)
        if self.scale is not None:
            z = z * self.scale.to(z)[:, None, :]
        return z + bias[:, None, :]

    def rescaled(self, scale: Tensor) -> FirstLayer:
        new = scale if self.scale is None else self.scale * scale
        return FirstLayer(self.basis, self.coef, new)


def stacked_layer(stack: Mapping[str, Tensor], i: int, h: Tensor, first: FirstLayer | None = None) -> Tensor:
    """Pre-activations of layer i for every model: h [N, D] (shared input) or [G, N, D] -> [G, N, out]."""
    w, b = stack[f"layers.{i}.weight"], stack[f"layers.{i}.bias"]  # [G, out, in], [G, out]
    if i == 0 and first is not None and h.dim() == 2:
        return first.preactivations(h, b)
    g, out, d = w.shape
    if h.dim() == 2:  # one wide matmul for all models: [N, D] @ [D, G*out]
        z = (h @ w.reshape(g * out, d).T).reshape(h.shape[0], g, out).transpose(0, 1)
        return z + b[:, None, :]
    return torch.baddbmm(b[:, None, :], h, w.transpose(1, 2))


def stacked_preactivations(stack: Mapping[str, Tensor], x: Tensor, first: FirstLayer | None = None) -> list[Tensor]:
    """Every layer's pre-activations [G, N, out_i] (hidden layers and the logits last)."""
    h: Tensor = normalized_inputs(stack, x)
    out = []
    n = num_layers(stack)
    for i in range(n):
        z = stacked_layer(stack, i, h, first)
        out.append(z)
        h = torch.relu(z)
    return out


def stacked_logits(stack: Mapping[str, Tensor], x: Tensor, first: FirstLayer | None = None) -> Tensor:
    """Logits of every model in the stack: [G, N, num_classes]."""
    h: Tensor = normalized_inputs(stack, x)
    n = num_layers(stack)
    for i in range(n - 1):
        h = torch.relu(stacked_layer(stack, i, h, first))
    return stacked_layer(stack, n - 1, h)


@torch.no_grad()
def stacked_accuracy_and_loss(stack: Mapping[str, Tensor], x: Tensor, y: Tensor, batch_size: int = 1000,
                              first: FirstLayer | None = None) -> tuple[Tensor, Tensor]:
    """Per model: (accuracy [G], mean cross-entropy [G]) on (x, y), in batches of samples, float64 sums."""
    g = stack["layers.0.weight"].shape[0]
    correct = torch.zeros(g, dtype=torch.float64)
    loss = torch.zeros(g, dtype=torch.float64)
    device = stack["layers.0.weight"].device
    for i in range(0, x.shape[0], batch_size):
        xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
        logits = stacked_logits(stack, xb, first).float()  # [G, B, K]
        correct += (logits.argmax(-1) == yb[None]).sum(1).double().cpu()
        ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), yb.repeat(g), reduction="none")
        loss += ce.reshape(g, -1).double().sum(1).cpu()
    n = x.shape[0]
    return correct / n, loss / n
