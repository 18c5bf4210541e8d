"""Lipschitz upper bounds of the ReLU MLP, L2 norm, in pixel space (normalisation folded in).

Global: Π_i ‖W_i‖₂ with exact spectral norms — true for any two inputs.

Local (Avant & Morgansen 2023, "Analytical bounds on the local Lipschitz constants of ReLU networks",
arXiv 2104.14672): for a centre x0 and radius ε, a bound L with ‖f(x) − f(x0)‖ ≤ L‖x − x0‖ for every
‖x − x0‖ ≤ ε. Layer by layer, with ε_i the radius of the ball the layer's input is known to stay in:
  - D: the inputs that can move at all (the previous layer's ReLUs not provably off); columns of W
    outside D are dropped.
  - Each pre-activation stays within y0_j ± ε_i‖a_jᵀD‖ (a_j the j-th row of W, y0 the centre's value).
  - The affine-ReLU map moves by at most r_j·|Δy_j| per unit, with r_j = (relu(ȳ_j) − relu(y0_j))/(ȳ_j − y0_j),
    ȳ_j = y0_j + ε_i‖a_jᵀD‖ — the steepest secant of the convex ReLU from y0_j inside the reachable
    interval (0 for a neuron that is off everywhere, 1 for one on at the centre).
  - The layer's factor is ‖R W D‖₂ (exact), the next radius ε_{i+1} = ε_i‖R W D‖₂ and the next D is {r_j > 0}.
The product of the factors (the classifier's is ‖W_L D‖₂) is the bound, `kind="centre"`, the paper's.
Each factor is capped by the exact float64 ‖W_i‖₂ (a valid bound too), so float32 rounding can never
lift the local bound above the global one.

That bound is relative to the centre: two points of the ball that both sit on the active side of a neuron
with y0 < 0 see slope 1 there, not r_j. `kind="ball"` gives the classical local constant over the ball
(sup of the input-Jacobian's spectral norm, any two points): the same pass, but every neuron that is not
provably off keeps weight 1 (rows with r_j > 0 kept, unscaled). Its radii still propagate with the tighter
centre factors, which only needs the centre-relative property. centre ≤ ball ≤ global always.

Batching: every point's reduced matrix R W D has its own rows and columns. We gather them, padded with
zeros to the largest support in the batch (zero rows/columns do not change a spectral norm), and take
the exact top eigenvalue of the smaller Gram matrix with one batched eigvalsh. Masking the full-size
matrix instead would cost ~8x more (cubic in the width, and about half of the units are off).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from backend.evaluate.norms import Params, folded_layers, spectral_norms
from backend.metrics import EvalRow

KINDS = ("centre", "ball")


def global_lipschitz(model_or_params: nn.Module | Params) -> float:
    """Π_i ‖W_i‖₂ (exact spectral norms, first layer folded with 1/std): valid for any pair of inputs."""
    return math.prod(spectral_norms(model_or_params))


def local_lipschitz(
    model_or_params: nn.Module | Params,
    x_points: Tensor,
    radius: float,
    *,
    kind: str = "centre",
    batch_size: int = 64,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """[P] upper bounds on the local Lipschitz constant in the L2 ball of `radius` (pixel units) around
    each of x_points ([P, C, H, W] or [P, D], values in [0, 1]). Computed on the model's device in `dtype`."""
    layers, x, radius = _prepare(model_or_params, x_points, radius, kind, batch_size, dtype)
    caps = spectral_norms(model_or_params)  # exact float64 ‖W_i‖₂: no rounding can lift a factor above it
    w1 = layers[0][0]
    first_gram = w1 @ w1.T  # [m1, m1]: the first layer's inputs all move, so R W1 W1ᵀ R is all we need
    first_reach = torch.linalg.vector_norm(w1, dim=1)  # [m1] = ‖a_jᵀ‖
    return torch.cat([_local_bound_batch(layers, caps, first_gram, first_reach, chunk, radius, kind)
                      for chunk in x.split(batch_size)])


def local_lipschitz_summary(
    model_or_params: nn.Module | Params, x_points: Tensor, radius: float, **kwargs
) -> tuple[float, float]:
    """(mean, sample std) of the local bounds over the points; std is 0.0 for a single point."""
    bounds = local_lipschitz(model_or_params, x_points, radius, **kwargs).double()
    std = float(bounds.std()) if bounds.numel() > 1 else 0.0
    return float(bounds.mean()), std


def local_lipschitz_naive(
    model_or_params: nn.Module | Params,
    x_points: Tensor,
    radius: float,
    *,
    kind: str = "centre",
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """The same bound, one point at a time with explicitly reduced matrices: the readable reference
    the batched version is checked and benchmarked against."""
    layers, x, radius = _prepare(model_or_params, x_points, radius, kind, 1, dtype)
    caps = spectral_norms(model_or_params)
    bounds = []
    for x0 in x:  # [D]
        h, eps, moving, bound = x0, radius, torch.ones_like(x0, dtype=torch.bool), 1.0
        for i, (w, b) in enumerate(layers):
            y0 = w @ h + b  # [m]
            if i == len(layers) - 1:
                slope = torch.ones_like(y0)
            else:
                reach = torch.linalg.vector_norm(w[:, moving], dim=1)  # ‖a_jᵀD‖
                slope = _secant_slope(y0, y0 + eps * reach)
            rows = slope > 0
            reduced = w[rows][:, moving]  # [rows, cols]
            centre = min(_spectral_norm(slope[rows, None] * reduced), caps[i])
            bound *= centre if kind == "centre" else min(_spectral_norm(reduced), caps[i])
            eps, moving, h = eps * centre, rows, torch.relu(y0)
        bounds.append(bound)
    return torch.tensor(bounds, dtype=dtype)


def _prepare(model_or_params, x_points, radius, kind, batch_size, dtype):
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if isinstance(radius, bool) or not isinstance(radius, int | float) or not math.isfinite(radius) or radius <= 0:
        raise ValueError(f"radius must be a positive finite number, got {radius!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    layers = folded_layers(model_or_params, dtype)
    in_features = layers[0][0].shape[1]
    if not isinstance(x_points, Tensor) or x_points.ndim not in (2, 4) or x_points.shape[0] < 1:
        raise ValueError("x_points must be a non-empty tensor of shape [P, C, H, W] or [P, D]")
    if math.prod(x_points.shape[1:]) != in_features:
        raise ValueError(f"x_points have {math.prod(x_points.shape[1:])} features per point, the model takes {in_features}")
    in_shape = getattr(getattr(model_or_params, "config", None), "in_shape", None)
    if x_points.ndim == 4 and in_shape is not None and tuple(x_points.shape[1:]) != tuple(in_shape):
        raise ValueError(f"x_points have shape {tuple(x_points.shape[1:])} per point, the model takes {tuple(in_shape)}")
    x = x_points.detach().reshape(x_points.shape[0], in_features).to(device=layers[0][0].device, dtype=dtype)
    if not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise ValueError("x_points must be pixels in [0, 1] (pass raw pixels, not normalised inputs)")
    return layers, x, float(radius)


def _secant_slope(y0: Tensor, y_top: Tensor) -> Tensor:
    """Steepest slope of relu between y0 and any y ≤ y_top (y_top ≥ y0); 0 where the interval is a point."""
    rise = y_top - y0
    safe = torch.where(rise > 0, rise, torch.ones_like(rise))
    return torch.where(rise > 0, (torch.relu(y_top) - torch.relu(y0)) / safe, torch.zeros_like(rise))


def _spectral_norm(m: Tensor) -> float:
    return float(torch.linalg.matrix_norm(m, ord=2)) if m.numel() else 0.0


def _local_bound_batch(layers, caps, first_gram, first_reach, x, radius, kind) -> Tensor:
    """Bounds for one batch of centres x [B, D]."""
    n_points = x.shape[0]
    h = x  # [B, n] the centre's input to the current layer
    eps = torch.full((n_points,), radius, dtype=x.dtype, device=x.device)  # [B] radius around h
    moving = None  # [B, n] inputs that can move; None = all of them (pixels)
    centre_bound, ball_bound = torch.ones_like(eps), torch.ones_like(eps)
    for i, (w, b) in enumerate(layers):
        y0 = h @ w.T + b  # [B, m]
        if i == len(layers) - 1:
            slope = torch.ones_like(y0)
        else:
            reach = first_reach.expand_as(y0) if moving is None else (moving.to(w.dtype) @ (w * w).T).sqrt()
            slope = _secant_slope(y0, y0 + eps[:, None] * reach)  # [B, m] r_j
        gram = first_gram if moving is None else None
        centre = _reduced_spectral_norm(w, slope, moving, gram).clamp_max(caps[i])  # [B]
        centre_bound = centre_bound * centre
        if kind == "ball":
            ball = _reduced_spectral_norm(w, (slope > 0).to(w.dtype), moving, gram).clamp_max(caps[i])
            ball_bound = ball_bound * ball
        eps, moving, h = eps * centre, slope > 0, torch.relu(y0)
    return centre_bound if kind == "centre" else ball_bound


def _reduced_spectral_norm(w: Tensor, row_scale: Tensor, moving: Tensor | None, gram: Tensor | None) -> Tensor:
    """Exact ‖diag(row_scale_p) · W · diag(moving_p)‖₂ for every point p: [B].

    w [m, n]; row_scale [B, m] ≥ 0; moving [B, n] bool or None (all columns); gram = W Wᵀ when moving is None.
    """
    row_idx, row_ok = _padded_support(row_scale > 0)  # [B, kr]
    scale = torch.gather(row_scale, 1, row_idx) * row_ok.to(row_scale.dtype)  # [B, kr], 0 on padding
    if moving is None:
        g = gram[row_idx[:, :, None], row_idx[:, None, :]] * scale[:, :, None] * scale[:, None, :]  # [B, kr, kr]
    else:
        col_idx, col_ok = _padded_support(moving)  # [B, kc]
        sub = w[row_idx[:, :, None], col_idx[:, None, :]] * scale[:, :, None] * col_ok[:, None, :].to(w.dtype)  # [B, kr, kc]
        g = sub @ sub.mT if sub.shape[1] <= sub.shape[2] else sub.mT @ sub  # smaller Gram
    if g.is_cuda:  # cuSOLVER's batched float32 eigvalsh is ~3e-4 off (measured on an H100) and no faster
        g = g.double()
    return torch.linalg.eigvalsh(g)[:, -1].clamp_min(0).sqrt().to(w.dtype)


def _padded_support(mask: Tensor) -> tuple[Tensor, Tensor]:
    """Indices of each row's True entries first (stable), cut to the largest count: ([B, k], valid bool [B, k])."""
    counts = mask.sum(dim=1)  # [B]
    k = max(int(counts.max()), 1)
    idx = torch.argsort((~mask).to(torch.uint8), dim=1, stable=True)[:, :k]
    valid = torch.arange(k, device=mask.device)[None, :] < counts[:, None]
    return idx, valid


def global_lipschitz_rows(model: nn.Module, x: Tensor, y: Tensor, config) -> list[EvalRow]:
    """Catalogue face: the global bound (x, y unused)."""
    return [EvalRow("lipschitz_global", None, float(global_lipschitz(model)))]


def local_lipschitz_rows(model: nn.Module, x: Tensor, y: Tensor, config) -> list[EvalRow]:
    """Catalogue face: mean and std of the local bound over the first config.lipschitz_points inputs."""
    radius = config.lipschitz_radius
    bounds = local_lipschitz(model, x[:config.lipschitz_points], radius).double().cpu()  # [P]
    std = float(bounds.std()) if bounds.numel() > 1 else 0.0
    return [EvalRow("lipschitz_local_mean", radius, float(bounds.mean())),
            EvalRow("lipschitz_local_std", radius, std)]
