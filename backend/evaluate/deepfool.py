"""DeepFool (L∞ and L2) with foolbox 3's semantics, batched over samples, analytic Jacobians for the MLP.

Per step and sample (as foolbox's DeepFoolAttack): candidates = the top-k classes of the *clean*
logits, reference = the first of them (the clean prediction); loss_k = logit_k − logit_ref; pick the
candidate with the smallest linearised distance |loss_k| / ‖∇loss_k‖_dual; step = (distance + 1e-4)
along sign(∇) (L∞) or ∇/‖∇‖₂ (L2); accumulate; x = clip(x₀ + (1 + overshoot)·p_total, 0, 1). A sample
stops as soon as it is misclassified. Because a ReLU MLP is piecewise linear, the input Jacobian of all
candidate logits at once is W_L · D_{L−1} · W_{L−1} ⋯ D_1 · W_1 · diag(1/std) with D the ReLU masks at
the current point — one batched product instead of one backward pass per candidate class. For L2 the
candidates' norms come from the Gram matrix A·Aᵀ (A = W_1·diag(1/std)), so only the chosen candidate's
gradient is expanded to pixel space. Samples that are already misclassified drop out of the batch.

The curve: run once per sample to a minimal adversarial perturbation, then robust accuracy(eps) =
share of samples whose perturbation projected onto the eps-ball (and clipped to [0, 1]) still leaves
the prediction correct. Misclassified clean samples are not robust at any eps.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from backend.evaluate.inputs import check_batch_size, check_grid, check_inputs, model_device
from backend.metrics import EvalRow
from backend.models import MLP

NORMS = ("linf", "l2")


def _check_mlp(model) -> None:
    if not isinstance(model, MLP):
        raise ValueError(f"DeepFool's analytic Jacobian needs a backend.models.MLP, got {type(model).__name__}")


def forward_with_masks(model: MLP, x: Tensor) -> tuple[Tensor, list[Tensor]]:
    """Logits [B, K] and the ReLU activation masks [B, H_i] of every hidden layer (same ops as forward)."""
    h = model.normalize(x)
    masks = []
    for layer in model.layers[:-1]:
        z = layer(h)
        masks.append(z > 0)
        h = torch.relu(z)
    return model.layers[-1](h), masks


def backprop_hidden(model: MLP, masks: list[Tensor], rows: Tensor) -> Tensor:
    """Pull row vectors on the last hidden layer [B, k, H_{L−1}] back to the first layer's output: [B, k, H₁].

    rows · D_{L−1} · W_{L−1} ⋯ W_2 · D_1: the chain rule of the MLP at the masked point, short of W_1.
    """
    g = rows * masks[-1][:, None, :].to(rows.dtype)
    for layer, mask in zip(reversed(model.layers[1:-1]), reversed(masks[:-1]), strict=True):
        g = (g @ layer.weight) * mask[:, None, :].to(g.dtype)  # [B, k, H_in]
    return g


def pixel_first_layer(model: MLP) -> Tensor:
    """A = W₁ · diag(1/std) [H₁, D]: the first layer as seen from pixel space (normalisation folded in)."""
    w1 = model.layers[0].weight
    return w1 / model.std.repeat_interleave(w1.shape[1] // model.std.numel())[None, :]


def backprop_rows(model: MLP, masks: list[Tensor], rows: Tensor, first: Tensor | None = None) -> Tensor:
    """Rows on the last hidden layer [B, k, H_{L−1}] -> the same rows of the input Jacobian [B, k, D].

    `first` is pixel_first_layer(model), passed in by loops that reuse it.
    """
    first = pixel_first_layer(model) if first is None else first
    return backprop_hidden(model, masks, rows) @ first


def analytic_input_jacobian(model: MLP, x: Tensor, classes: Tensor) -> Tensor:
    """∂ logit_c / ∂ pixels for the given classes per sample: x [B, ...], classes [B, k] -> [B, k, D]."""
    _check_mlp(model)
    if classes.ndim != 2 or classes.shape[0] != x.shape[0]:
        raise ValueError(f"classes must be [B, k] with B = {x.shape[0]}, got {tuple(classes.shape)}")
    with torch.no_grad():
        _, masks = forward_with_masks(model, x.reshape(x.shape[0], -1))
        rows = model.layers[-1].weight[classes]  # [B, k, H_{L−1}]
        return backprop_rows(model, masks, rows)


def _deepfool_batch(model: MLP, x0: Tensor, labels: Tensor | None, p: str, steps: int, candidates: int,
                    overshoot: float) -> tuple[Tensor, Tensor, Tensor]:
    """x0 [B, D] -> (perturbation [B, D], fooled [B], clean prediction == reference [B]) for one batch."""
    n = x0.shape[0]
    logits = model(x0)
    k = min(candidates, logits.shape[1])
    classes = logits.argsort(dim=1).flip(1)[:, :k]  # [B, k] clean top-k, descending (as foolbox)
    reference = labels if labels is not None else classes[:, 0]
    x = x0.clone()
    p_total = torch.zeros_like(x0)
    active = torch.arange(n, device=x0.device)  # samples not yet misclassified
    w_last = model.layers[-1].weight  # [K, H_{L−1}]
    first = pixel_first_layer(model)  # [H₁, D]
    gram = first @ first.T if p == "l2" else None  # [H₁, H₁]
    for _ in range(steps):
        logits, masks = forward_with_masks(model, x[active])
        still = logits.argmax(dim=1) == reference[active]
        active, logits, masks = active[still], logits[still], [m[still] for m in masks]
        if active.numel() == 0:
            break
        cls = classes[active]  # [b, k]
        rows = logits.gather(1, cls)
        losses = rows[:, 1:] - rows[:, :1]  # [b, k−1] logit differences to the reference
        picked = torch.arange(active.numel(), device=x0.device)
        if p == "linf":  # dual norm L1 needs every candidate's full pixel gradient
            grads = backprop_rows(model, masks, w_last[cls[:, 1:]] - w_last[cls[:, :1]], first)  # [b, k−1, D]
            distances = losses.abs() / (torch.linalg.vector_norm(grads, ord=1, dim=2) + 1e-8)
            best = distances.argmin(dim=1)
            dist, grad = distances[picked, best] + 1e-4, grads[picked, best]  # [b], [b, D]
            step = dist[:, None] * grad.sign()
        else:  # L2 norms from the Gram matrix: ‖g A‖² = g (A Aᵀ) gᵀ; only the chosen row goes to pixels
            hidden = backprop_hidden(model, masks, w_last[cls[:, 1:]] - w_last[cls[:, :1]])  # [b, k−1, H₁]
            sq_norms = ((hidden @ gram) * hidden).sum(dim=2).clamp_min_(0.0)
            distances = losses.abs() / (sq_norms.sqrt() + 1e-8)
            best = distances.argmin(dim=1)
            dist, grad = distances[picked, best] + 1e-4, hidden[picked, best] @ first  # [b], [b, D]
            step = (dist / (grad.norm(dim=1) + 1e-8))[:, None] * grad
        p_total[active] += step
        x[active] = (x0[active] + (1.0 + overshoot) * p_total[active]).clamp_(0.0, 1.0)
    pert = x - x0
    fooled = model((x0 + pert).clamp_(0.0, 1.0)).argmax(dim=1) != reference  # as the curve rebuilds it
    return pert, fooled, classes[:, 0] == reference


def _run(model: MLP, x: Tensor, labels: Tensor | None, p: str, steps: int, candidates: int, overshoot: float,
         batch_size: int) -> tuple[Tensor, Tensor, Tensor]:
    """(perturbation [N, D], fooled [N], clean-correct [N]) on the CPU, batch by batch on the model's device."""
    _check_mlp(model)
    if p not in NORMS:
        raise ValueError(f"p must be one of {NORMS}, got {p!r}")
    if steps < 1 or candidates < 2 or overshoot < 0:
        raise ValueError(f"need steps >= 1, candidates >= 2, overshoot >= 0; got {steps}, {candidates}, {overshoot}")
    check_batch_size(batch_size)
    device = model_device(model)
    flat = x.reshape(x.shape[0], -1)
    outs = []
    with torch.no_grad():
        for i in range(0, x.shape[0], batch_size):
            yb = labels[i:i + batch_size].to(device) if labels is not None else None
            out = _deepfool_batch(model, flat[i:i + batch_size].to(device), yb, p, steps, candidates, overshoot)
            outs.append([t.cpu() for t in out])
    return tuple(torch.cat(parts) for parts in zip(*outs, strict=True))


def deepfool_with_success(model: MLP, x: Tensor, *, labels: Tensor | None = None, p: str = "linf",
                          steps: int = 50, candidates: int = 10, overshoot: float = 0.02,
                          batch_size: int = 1000) -> tuple[Tensor, Tensor]:
    """(perturbation shaped like x, fooled [N] bool). `labels` None: fooled = prediction changed."""
    x = check_inputs(model, x, labels)
    pert, fooled, _ = _run(model, x, labels, p, steps, candidates, overshoot, batch_size)
    return pert.reshape(x.shape), fooled


def deepfool(model: MLP, x: Tensor, *, p: str = "linf", steps: int = 50, candidates: int = 10,
             overshoot: float = 0.02, batch_size: int = 1000) -> Tensor:
    """Minimal adversarial perturbation per sample (shaped like x): x + result is clipped to [0, 1]."""
    pert, _ = deepfool_with_success(model, x, p=p, steps=steps, candidates=candidates,
                                    overshoot=overshoot, batch_size=batch_size)
    return pert


def project(pert: Tensor, eps: float, p: str) -> Tensor:
    """Project perturbations [N, D] onto the eps-ball: clamp (L∞) or rescale to norm ≤ eps (L2)."""
    if p == "linf":
        return pert.clamp(-eps, eps)
    norms = pert.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return pert * (eps / norms).clamp(max=1.0)


def _median(values: Tensor) -> float:
    """Median with the mean of the two middle values for even counts (inf-safe); nan when empty."""
    if values.numel() == 0:
        return float("nan")
    v = values.double().sort().values
    n = v.numel()
    lo, hi = float(v[(n - 1) // 2]), float(v[n // 2])
    return lo if lo == hi else (hi if math.isinf(hi) else (lo + hi) / 2)


def deepfool_curve(model: MLP, x: Tensor, y: Tensor, eps_grid, *, p: str = "linf", steps: int = 50,
                   candidates: int = 10, overshoot: float = 0.02,
                   batch_size: int = 1000) -> tuple[list[float], float]:
    """(robust accuracy at each eps, median minimal perturbation norm over clean-correct samples).

    Samples where DeepFool failed within `steps` count as +inf in the median (and stay robust at every
    eps unless their projected perturbation happens to fool the model — foolbox counts them the same).
    """
    x = check_inputs(model, x, y)
    eps = check_grid("eps_grid", eps_grid)
    pert, fooled, clean_correct = _run(model, x, y, p, steps, candidates, overshoot, batch_size)  # [N, D], [N], [N]
    norms = pert.abs().amax(dim=1) if p == "linf" else pert.norm(dim=1)  # [N]
    device = model_device(model)
    flat_x = x.reshape(x.shape[0], -1)
    robust = torch.zeros(len(eps), dtype=torch.long)
    with torch.no_grad():
        for k, e in enumerate(eps):
            # Within the ball the projection is the identity: the attack's own outcome decides. Only
            # clean-correct samples whose minimal perturbation is larger than eps need a forward pass.
            inside = clean_correct & (norms <= e)
            robust[k] += int((inside & ~fooled).sum())
            if e == 0:
                robust[k] += int((clean_correct & ~inside).sum())  # projected onto {0}: the clean input
                continue
            (outside,) = (clean_correct & ~inside).nonzero(as_tuple=True)
            for idx in outside.split(batch_size):
                xb, pb, yb = (t[idx].to(device) for t in (flat_x, pert, y))
                pred = model((xb + project(pb, e, p)).clamp_(0.0, 1.0)).argmax(dim=1)
                robust[k] += int((pred == yb).sum())
    norms = torch.where(fooled, norms, torch.full_like(norms, float("inf")))
    return (robust.double() / x.shape[0]).tolist(), _median(norms[clean_correct])


def _deepfool_rows(model: MLP, x: Tensor, y: Tensor, config, p: str) -> list[EvalRow]:
    grid = config.deepfool_linf_eps if p == "linf" else config.deepfool_l2_eps
    curve, median = deepfool_curve(model, x, y, grid, p=p, steps=config.deepfool_steps,
                                   candidates=config.deepfool_candidates, overshoot=config.deepfool_overshoot,
                                   batch_size=config.batch_size)
    rows = [EvalRow(f"deepfool_{p}_acc", e, v) for e, v in zip(grid, curve, strict=True)]
    return [*rows, EvalRow(f"deepfool_{p}_median", None, median)]


def deepfool_linf_rows(model: MLP, x: Tensor, y: Tensor, config) -> list[EvalRow]:
    """Catalogue face: DeepFool L∞ robust accuracy over config.deepfool_linf_eps and the median perturbation."""
    return _deepfool_rows(model, x, y, config, "linf")


def deepfool_l2_rows(model: MLP, x: Tensor, y: Tensor, config) -> list[EvalRow]:
    """Catalogue face: DeepFool L2 robust accuracy over config.deepfool_l2_eps and the median perturbation."""
    return _deepfool_rows(model, x, y, config, "l2")
