"""Certified robust accuracy (a lower bound on the true robust accuracy) for the ReLU MLP.

L∞: the input set is the ε-box around x intersected with the pixel box, [max(x − ε, 0), min(x + ε, 1)], pushed
through the MLP with its normalisation folded into the first layer (backend.evaluate.norms.folded_layers).
A sample is certified at ε when a lower bound on every margin z_y − z_j (j ≠ y) is positive over that set.

- IBP (interval bound propagation, Gowal et al. 2018): intervals layer by layer; the last layer is applied to
  the margins directly (C·W_L, the "elided" final layer), which is tighter than bounding logits separately.
- CROWN (Zhang et al. 2018): a linear lower bound of the margins in terms of the input, obtained backwards
  through the layers with the ReLU relaxations h ≤ u/(u − l)·(z − l) (upper) and h ≥ α·z (lower, α = 1 when
  u ≥ −l else 0, "adaptive") for unstable neurons (l < 0 < u); stable neurons are exact. The pre-activation
  bounds it needs are computed the same way layer by layer, but only for the neurons IBP leaves unstable (a
  stable neuron's relaxation is exact, so tighter bounds for it change nothing), and intersected with IBP's.
  The final margin bound is the larger of CROWN's and IBP's, so CROWN is never looser than IBP.

Certified at ε_k implies certified at every smaller ε (the sets are nested), so curves walk the grid upwards
and only re-check the samples still certified.

L2: a certified radius from the local Lipschitz bound L(x, r) of backend.evaluate.lipschitz (valid for
‖x' − x‖ ≤ r): each margin z_y − z_j moves by at most √2·L·‖x' − x‖, so the sample is certified at ε when its
clean margin exceeds √2·L(x, ε)·ε (the bound is computed with radius ε itself).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from backend.evaluate.inputs import check_batch_size, check_grid, check_inputs
from backend.evaluate.lipschitz import _padded_support, local_lipschitz
from backend.evaluate.norms import folded_layers
from backend.models import MLP

METHODS = ("ibp", "crown")

Layers = list[tuple[Tensor, Tensor]]


def _check_mlp(model) -> None:
    if not isinstance(model, MLP):
        raise ValueError(f"certification needs a backend.models.MLP, got {type(model).__name__}")


def input_box(x: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """The L∞ ball around flat pixels x [B, D] clipped to [0, 1]: (lower, upper)."""
    return (x - eps).clamp_(0.0, 1.0), (x + eps).clamp_(0.0, 1.0)


def _affine_interval(w: Tensor, b: Tensor, lo: Tensor, hi: Tensor) -> tuple[Tensor, Tensor]:
    centre, radius = (lo + hi) / 2, (hi - lo) / 2
    zc, zr = centre @ w.T + b, radius @ w.abs().T
    return zc - zr, zc + zr


def _relaxation(lo: Tensor, hi: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """ReLU relaxation per neuron: (lower slope, upper slope, upper intercept) with slope·z (+ intercept)."""
    unstable = (lo < 0) & (hi > 0)
    active = (lo >= 0).to(lo.dtype)
    width = torch.where(unstable, hi - lo, torch.ones_like(hi))
    up_slope = torch.where(unstable, hi / width, active)
    up_int = torch.where(unstable, -up_slope * lo, torch.zeros_like(lo))
    lo_slope = torch.where(unstable, (hi >= -lo).to(lo.dtype), active)
    return lo_slope, up_slope, up_int


def _backward_lower(a: Tensor, c: Tensor, layers: Layers, bounds: list[tuple[Tensor, Tensor]],
                    x_lo: Tensor, x_hi: Tensor) -> Tensor:
    """Lower bound over the input box of a·h_k + c, h_k = relu(z_k) the output of hidden layer k = len(bounds)−1.

    a [B, s, m_k], c [B, s]; bounds[i] = (l_i, u_i) of the pre-activations z_i [B, m_i]. Returns [B, s].
    """
    for i in range(len(bounds) - 1, -1, -1):
        lo_slope, up_slope, up_int = _relaxation(*bounds[i])
        pos, neg = a.clamp_min(0), a.clamp_max(0)
        a_z = pos * lo_slope[:, None, :] + neg * up_slope[:, None, :]  # coefficients on z_i
        c = c + (neg * up_int[:, None, :]).sum(dim=2)
        w, b = layers[i]
        c = c + a_z @ b
        a = a_z @ w  # on h_{i−1} (the input for i = 0)
    centre, radius = (x_lo + x_hi) / 2, (x_hi - x_lo) / 2
    return c + (a @ centre[:, :, None])[..., 0] - (a.abs() @ radius[:, :, None])[..., 0]


def _hidden_bounds(layers: Layers, x_lo: Tensor, x_hi: Tensor, method: str) -> list[tuple[Tensor, Tensor]]:
    """(l_i, u_i) of every hidden pre-activation z_i, i = 0 … L−2."""
    bounds = [_affine_interval(*layers[0], x_lo, x_hi)]  # exact for one affine map of a box
    for k in range(1, len(layers) - 1):
        l_prev, u_prev = bounds[-1]
        lo, hi = _affine_interval(*layers[k], l_prev.clamp_min(0), u_prev.clamp_min(0))
        if method == "crown":
            unstable = (lo < 0) & (hi > 0)
            if unstable.any():
                idx, valid = _padded_support(unstable)  # [B, q]
                w, b = layers[k]
                rows, bias = w[idx], b[idx]  # [B, q, m_{k−1}], [B, q]
                both = _backward_lower(torch.cat([rows, -rows], dim=1), torch.cat([bias, -bias], dim=1),
                                       layers, bounds, x_lo, x_hi)  # [B, 2q]
                q = idx.shape[1]
                new_lo, new_hi = both[:, :q], -both[:, q:]
                lo = lo.scatter(1, idx, torch.where(valid, torch.maximum(lo.gather(1, idx), new_lo),
                                                    lo.gather(1, idx)))
                hi = hi.scatter(1, idx, torch.where(valid, torch.minimum(hi.gather(1, idx), new_hi),
                                                    hi.gather(1, idx)))
        bounds.append((lo, hi))
    return bounds


def _spec_lower(layers: Layers, x_lo: Tensor, x_hi: Tensor, spec: Tensor, method: str) -> Tensor:
    """Lower bounds of spec · logits over the box; spec [B, s, K]. Returns [B, s]."""
    bounds = _hidden_bounds(layers, x_lo, x_hi, method)
    w, b = layers[-1]
    a, c = spec @ w, spec @ b  # [B, s, m], [B, s]
    h_lo, h_hi = bounds[-1][0].clamp_min(0), bounds[-1][1].clamp_min(0)
    centre, radius = (h_lo + h_hi) / 2, (h_hi - h_lo) / 2
    ibp = c + (a @ centre[:, :, None])[..., 0] - (a.abs() @ radius[:, :, None])[..., 0]
    if method == "ibp":
        return ibp
    return torch.maximum(ibp, _backward_lower(a, c, layers, bounds, x_lo, x_hi))


def _layers(model: MLP, dtype: torch.dtype) -> Layers:
    _check_mlp(model)
    return folded_layers(model, dtype)


def _check(method: str, eps: float) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not (eps >= 0) or math.isinf(eps):
        raise ValueError(f"eps must be a finite number >= 0, got {eps}")


def margin_lower_bounds(model: MLP, x: Tensor, y: Tensor, eps: float, method: str = "crown",
                        dtype: torch.dtype = torch.float32) -> Tensor:
    """[B, K] lower bounds of z_y − z_j over the clipped L∞ ball (the entry j = y is +inf)."""
    _check(method, eps)
    x = check_inputs(model, x, y)
    layers = _layers(model, dtype)
    flat = x.reshape(x.shape[0], -1).to(device=layers[0][0].device, dtype=dtype)
    y = y.to(flat.device)
    k = layers[-1][0].shape[0]
    eye = torch.eye(k, dtype=dtype, device=flat.device)
    spec = eye[y][:, None, :] - eye[None, :, :]  # [B, K, K]: row j is e_y − e_j
    lower = _spec_lower(layers, *input_box(flat, eps), spec, method)
    return lower.masked_fill(eye[y].bool(), math.inf)


def logit_bounds(model: MLP, x: Tensor, eps: float, method: str = "crown",
                 dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """([B, K] lower, [B, K] upper) bounds of the logits over the clipped L∞ ball."""
    _check(method, eps)
    x = check_inputs(model, x)
    layers = _layers(model, dtype)
    flat = x.reshape(x.shape[0], -1).to(device=layers[0][0].device, dtype=dtype)
    k = layers[-1][0].shape[0]
    eye = torch.eye(k, dtype=dtype, device=flat.device).expand(flat.shape[0], k, k)
    both = _spec_lower(layers, *input_box(flat, eps), torch.cat([eye, -eye], dim=1), method)
    return both[:, :k], -both[:, k:]


def certified_linf_curve(model: MLP, x: Tensor, y: Tensor, eps_grid, *, method: str = "crown",
                         batch_size: int = 64) -> list[float]:
    """Share of *all* samples certified at each ε of the grid (ε = 0: clean accuracy)."""
    _check(method, 0.0)
    x = check_inputs(model, x, y)
    grid = check_grid("eps_grid", eps_grid)
    check_batch_size(batch_size)
    layers = _layers(model, torch.float32)
    device = layers[0][0].device
    flat = x.reshape(x.shape[0], -1)
    upto = _clean_upto(model, flat, y, batch_size, device)  # largest grid ε certified so far
    open_ = torch.isfinite(upto)  # still certified at the last ε checked
    eye = torch.eye(layers[-1][0].shape[0], device=device)
    with torch.no_grad():
        for e in sorted(set(grid)):
            if e == 0:
                continue
            (left,) = open_.nonzero(as_tuple=True)
            for chunk in left.split(batch_size):
                xb, yb = flat[chunk].to(device), y[chunk].to(device)
                spec = eye[yb][:, None, :] - eye[None, :, :]  # [b, K, K] rows e_y − e_j
                lower = _spec_lower(layers, *input_box(xb, e), spec, method).masked_fill(eye[yb].bool(), math.inf)
                ok = (lower.amin(dim=1) > 0).cpu()
                upto[chunk[ok]] = e
                open_[chunk[~ok]] = False
    return [float((upto >= e).double().mean()) for e in grid]


def _clean_upto(model: nn.Module, flat: Tensor, y: Tensor, batch_size: int, device) -> Tensor:
    """[N] float64: 0 for clean-correct samples (certified at ε = 0), −inf for clean mistakes."""
    correct = []
    with torch.no_grad():
        for i in range(0, flat.shape[0], batch_size):
            pred = model(flat[i:i + batch_size].to(device)).argmax(dim=1).cpu()
            correct.append(pred == y[i:i + batch_size].cpu())
    correct = torch.cat(correct)
    return torch.where(correct, 0.0, -math.inf).double()


def certified_l2_curve(model: MLP, x: Tensor, y: Tensor, eps_grid, *, batch_size: int = 64) -> list[float]:
    """Share of *all* samples certified at each L2 ε of the grid from margin > √2 · L_local(x, ε) · ε."""
    x = check_inputs(model, x, y)
    grid = check_grid("eps_grid", eps_grid)
    check_batch_size(batch_size)
    _check_mlp(model)
    device = next(model.parameters()).device
    flat = x.reshape(x.shape[0], -1)
    upto = _clean_upto(model, flat, y, batch_size, device)
    open_ = torch.isfinite(upto)
    margins = torch.empty(flat.shape[0], dtype=torch.float64)
    with torch.no_grad():
        for i in range(0, flat.shape[0], batch_size):
            logits = model(flat[i:i + batch_size].to(device)).double().cpu()
            yb = y[i:i + batch_size].cpu()
            z_y = logits.gather(1, yb[:, None])[:, 0]
            margins[i:i + batch_size] = z_y - logits.scatter(1, yb[:, None], -math.inf).amax(dim=1)
    for e in sorted(set(grid)):
        if e == 0:
            continue
        (left,) = open_.nonzero(as_tuple=True)
        if left.numel() == 0:
            break
        bound = local_lipschitz(model, flat[left], e, batch_size=batch_size).double().cpu()  # [n]
        ok = margins[left] > math.sqrt(2.0) * bound * e
        upto[left[ok]] = e
        open_[left[~ok]] = False
    return [float((upto >= e).double().mean()) for e in grid]
