"""REPAIR (Jordan et al. 2023): give a merged MLP back the activation statistics its endpoints had.

Interpolating two aligned networks shrinks the variance of their hidden pre-activations ("variance
collapse"), which costs accuracy. REPAIR rescales and shifts every hidden neuron's pre-activation so its
mean and standard deviation on a batch of images equal the interpolation of the (aligned) endpoints'
statistics: target = Σ_k w_k · stat_k (a pair at λ: w = (1−λ, λ); MergeMany: w = 1/n each). The MLP has no
normalisation layers, so the affine correction is folded into the layer's W and b and the result stays a
plain MLP: z' = s·(z − μ) + μ* = (s·W) h + s·(b − μ) + μ*, s = σ*/σ.

Layers are corrected in order, each measured with the layers before it already corrected, so after the
correction every hidden neuron's statistics on the batch equal their targets. Statistics are population
(biased) mean/std, computed in float64. Neurons whose pre-activation is (nearly) constant on the batch are
shifted but not rescaled.

Everything works on stacks of G models at once (backend.stacked), so all λ points of an interpolation curve
are repaired in one pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from backend.merge.common import MergeError, Params
from backend.stacked import (
    FirstLayer,
    normalized_inputs,
    num_layers,
    stack_params,
    stacked_layer,
    stacked_preactivations,
    unstack_params,
)

MIN_STD = 1e-6  # below this a neuron's pre-activation counts as constant: shift it, never rescale it
VERSION = 1


def hidden_stats(stack: Mapping[str, Tensor], x: Tensor) -> list[tuple[Tensor, Tensor]]:
    """Per hidden layer: (mean [G, n], std [G, n]) of the pre-activations on x, float64."""
    zs = stacked_preactivations(stack, x)[:-1]
    return [(z.double().mean(1), z.double().std(1, correction=0)) for z in zs]


def target_stats(endpoint_stats: Sequence[list[tuple[Tensor, Tensor]]], weights: Tensor) -> list[tuple[Tensor, Tensor]]:
    """Σ_k weights[g, k] · stat_k per layer: endpoint_stats[k][layer] = (mean [n], std [n]); weights [G, K]."""
    weights = weights.double()
    out = []
    for layer in range(len(endpoint_stats[0])):
        means = torch.stack([s[layer][0].reshape(-1) for s in endpoint_stats])  # [K, n]
        stds = torch.stack([s[layer][1].reshape(-1) for s in endpoint_stats])
        w = weights.to(means.device)
        out.append((w @ means, w @ stds))  # [G, n]
    return out


@torch.no_grad()
def repair_stack(stack: Mapping[str, Tensor], targets: Sequence[tuple[Tensor, Tensor]], x: Tensor,
                 first: FirstLayer | None = None) -> Params | tuple[Params, FirstLayer]:
    """A new stack whose hidden pre-activations on x have mean/std targets[layer] = ([G, n], [G, n]).

    With `first` (the stack's first layer in factored form) the wide input layer is computed from it, and
    (new stack, rescaled first layer) is returned so callers can keep evaluating in factored form.
    """
    n_layers = num_layers(stack)
    if len(targets) != n_layers - 1:
        raise MergeError(f"REPAIR needs targets for {n_layers - 1} hidden layer(s), got {len(targets)}")
    out = {k: v.clone() for k, v in stack.items()}
    h: Tensor = normalized_inputs(out, x)
    for i in range(n_layers - 1):
        z = stacked_layer(out, i, h, first)  # [G, N, n]
        var, mean = torch.var_mean(z, dim=1, correction=0)
        mean, std = mean.double(), var.double().sqrt()
        goal_mean, goal_std = targets[i]
        if goal_mean.shape != mean.shape:
            raise MergeError(f"REPAIR target of layer {i} has shape {tuple(goal_mean.shape)}, expected {tuple(mean.shape)}")
        scale = torch.where(std > MIN_STD, goal_std / std.clamp_min(MIN_STD), torch.ones_like(std))  # [G, n]
        w, b = out[f"layers.{i}.weight"], out[f"layers.{i}.bias"]
        out[f"layers.{i}.weight"] = (w.double() * scale[:, :, None]).to(w.dtype)
        out[f"layers.{i}.bias"] = ((b.double() - mean) * scale + goal_mean).to(b.dtype)
        if i == 0 and first is not None:
            first = first.rescaled(scale.to(w.dtype))
        shift = goal_mean - mean * scale  # the corrected layer is z·scale + shift: no second matmul
        h = torch.relu(z * scale.to(z.dtype)[:, None, :] + shift.to(z.dtype)[:, None, :])
    return out if first is None else (out, first)


def repair(
    merged: Mapping[str, Tensor],
    endpoints: Sequence[Mapping[str, Tensor]],
    weights: Sequence[float],
    x: Tensor,
) -> Params:
    """REPAIR one merged model: targets = Σ_k weights[k] · stats of endpoints[k] (aligned to `merged`) on x."""
    if len(endpoints) == 0 or len(endpoints) != len(weights):
        raise MergeError("REPAIR needs one weight per endpoint model and at least one endpoint")
    if not isinstance(x, Tensor) or x.shape[0] < 2:
        raise MergeError("REPAIR needs a batch of at least 2 images")
    ends = hidden_stats(stack_params([dict(e) for e in endpoints]), x)  # per layer ([K, n], [K, n])
    per_endpoint = [[(m[k], s[k]) for m, s in ends] for k in range(len(endpoints))]
    targets = target_stats(per_endpoint, torch.tensor([list(weights)], dtype=torch.float64))
    return unstack_params(repair_stack(stack_params([dict(merged)]), targets, x), 0)
