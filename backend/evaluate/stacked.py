"""The evaluation protocol for K MLPs of one architecture at once, as one stacked network.

Weights [K, out, in]; a shared input batch [B, D] goes through the first layer as one wide matmul and
per-model inputs [K, B, D] (adversarials differ per model) as batched matmuls over the model dimension
(backend.stacked). Every metric gives each model exactly what evaluating it alone gives (same math per
sample, same noise draws; only float rounding of batched vs. single matmuls differs), so the stacked
path is a drop-in for `suite.evaluate_model` on many models — what keeps a GPU busy after training.

    accuracy/loss   one stacked forward per batch of samples
    fgsm            one stacked forward+backward (each model's own input gradient), one forward per eps
    noise           the same seeded draws as noise_curve, each σ one stacked forward
    deepfool_*      foolbox-3 DeepFool with the analytic ReLU Jacobian, batched over (model, sample);
                    samples drop out per model as they are fooled (padded to the slowest model)

Metrics without a stacked implementation (weight norm, Lipschitz bounds; the strong attacks and
certification when they arrive) run model by model through `suite`'s per-metric code. Adding one:
write fn(stack, x, y, config) -> one list of EvalRow per model, and name it in the metric's catalogue entry
(`stacked="backend.evaluate.stacked:fn"` in backend/metrics.py); STACKED_METRICS is built from there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from backend.evaluate.config import EvalConfig
from backend.evaluate.deepfool import NORMS, _median, project
from backend.evaluate.inputs import check_batch_size, check_grid, check_inputs
from backend.evaluate.noise import NOISE_BLOCK
from backend.metrics import METRICS
from backend.models import MLP, MLPConfig, config_from_state_dict
from backend.progress import ProgressFn, report
from backend.stacked import stack_params, stacked_layer

ROWS_PER_CHUNK_FACTOR = 8  # a chunk holds K x (batch_size * 8 / K) (model, sample) rows, at least 1 sample


class ModelStack:
    """K MLPs of one architecture (and one input normalisation) as stacked tensors on one device."""

    def __init__(self, models: Sequence[nn.Module | Mapping[str, Tensor]], device: str | torch.device | None = None,
                 in_shape: tuple[int, int, int] | None = None):
        if len(models) == 0:
            raise ValueError("a model stack needs at least one model")
        params = []
        for m in models:
            if isinstance(m, MLP):
                in_shape = in_shape or tuple(m.config.in_shape)
                params.append({k: v.detach() for k, v in m.state_dict().items()})
            elif isinstance(m, Mapping):
                params.append(dict(m))
            else:
                raise ValueError(f"a stack holds backend.models.MLPs or their state dicts, got {type(m).__name__}")
        self.config: MLPConfig = config_from_state_dict(params[0], in_shape)
        for i, p in enumerate(params[1:], start=1):
            if set(p) != set(params[0]) or any(p[k].shape != params[0][k].shape for k in p):
                raise ValueError(f"model {i} of the stack has another architecture than model 0")
            if not (torch.equal(p["mean"].cpu(), params[0]["mean"].cpu())
                    and torch.equal(p["std"].cpu(), params[0]["std"].cpu())):
                raise ValueError(f"model {i} of the stack normalises its inputs differently from model 0")
        device = torch.device(device) if device is not None else params[0]["layers.0.weight"].device
        self.params = {k: v.to(device, torch.float32) for k, v in stack_params(params).items()}
        self.k = len(params)
        self.n_layers = len(self.config.widths) + 1
        self.device = device

    def __len__(self) -> int:
        return self.k

    def weight(self, i: int) -> Tensor:
        return self.params[f"layers.{i}.weight"]  # [K, out, in]

    def normalize(self, x: Tensor) -> Tensor:
        """Pixels [..., D] (or [B, C, H, W]) -> normalised features, as MLP.normalize, keeping leading dims."""
        c = self.config.in_shape[0]
        lead = x.shape[:-1] if x.dim() in (2, 3) else x.shape[:1]
        flat = x.reshape(*lead, c, -1)
        mean, std = self.params["mean"], self.params["std"]
        return ((flat - mean[:, None]) / std[:, None]).reshape(*lead, -1)

    def forward_with_masks(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """x [B, D] shared or [K, B, D] -> logits [K, B, classes] and ReLU masks [K, B, H_i]."""
        h = self.normalize(x)
        masks = []
        for i in range(self.n_layers - 1):
            z = stacked_layer(self.params, i, h)
            masks.append(z > 0)
            h = torch.relu(z)
        return stacked_layer(self.params, self.n_layers - 1, h), masks

    def __call__(self, x: Tensor) -> Tensor:
        h = self.normalize(x)
        for i in range(self.n_layers - 1):
            h = torch.relu(stacked_layer(self.params, i, h))
        return stacked_layer(self.params, self.n_layers - 1, h)

    def pixel_first_layer(self) -> Tensor:
        """W₁ · diag(1/std) per model: [K, H₁, D] (normalisation folded in, as deepfool.pixel_first_layer)."""
        w1 = self.weight(0)
        return w1 / self.params["std"].repeat_interleave(w1.shape[2] // self.params["std"].numel())[None, None, :]


def _chunks(n: int, k: int, batch_size: int) -> list[tuple[int, int]]:
    size = max(1, (batch_size * ROWS_PER_CHUNK_FACTOR) // k)
    size = min(size, batch_size)
    return [(i, min(i + size, n)) for i in range(0, n, size)]


def _flat(x: Tensor) -> Tensor:
    return x.reshape(x.shape[0], -1)


# -- accuracy, FGSM, noise ----------------------------------------------------------------------------------


@torch.no_grad()
def stacked_accuracy_and_loss(stack: ModelStack, x: Tensor, y: Tensor, batch_size: int = 1000
                              ) -> tuple[list[float], list[float]]:
    """Per model: (accuracy, mean cross-entropy), as accuracy_and_loss."""
    x = check_inputs(stack, x, y)
    check_batch_size(batch_size)
    correct = torch.zeros(stack.k, dtype=torch.long)
    loss_sum = torch.zeros(stack.k, dtype=torch.float64)
    for lo, hi in _chunks(x.shape[0], stack.k, batch_size):
        xb, yb = _flat(x[lo:hi]).to(stack.device), y[lo:hi].to(stack.device)
        logits = stack(xb).float()  # [K, B, classes]
        correct += (logits.argmax(2) == yb[None]).sum(1).cpu()
        ce = F.cross_entropy(logits.transpose(1, 2), yb[None].expand(stack.k, -1), reduction="none")  # [K, B]
        loss_sum += ce.double().sum(1).cpu()
    n = x.shape[0]
    return (correct.double() / n).tolist(), (loss_sum / n).tolist()


def stacked_fgsm_curve(stack: ModelStack, x: Tensor, y: Tensor, eps_grid, batch_size: int = 1000
                       ) -> list[list[float]]:
    """Per model: robust accuracy at each eps under FGSM, as fgsm_curve (each model attacked with its own gradient)."""
    x = check_inputs(stack, x, y)
    eps = check_grid("eps_grid", eps_grid)
    check_batch_size(batch_size)
    correct = torch.zeros(stack.k, len(eps), dtype=torch.long)
    for lo, hi in _chunks(x.shape[0], stack.k, batch_size):
        xb, yb = _flat(x[lo:hi]).to(stack.device), y[lo:hi].to(stack.device)
        xk = xb.expand(stack.k, -1, -1).clone().requires_grad_(True)  # [K, B, D]
        with torch.enable_grad():
            logits = stack(xk)
            loss = F.cross_entropy(logits.transpose(1, 2), yb[None].expand(stack.k, -1), reduction="sum")
            (grad,) = torch.autograd.grad(loss, xk)  # model k's loss only reaches xk[k]: its own gradient
        direction, clean = grad.sign(), logits.detach()
        with torch.no_grad():
            for j, e in enumerate(eps):
                out = stack((xb + e * direction).clamp_(0.0, 1.0)) if e > 0 else clean
                correct[:, j] += (out.argmax(2) == yb[None]).sum(1).cpu()
    return (correct.double() / x.shape[0]).tolist()


@torch.no_grad()
def stacked_noise_curve(stack: ModelStack, x: Tensor, y: Tensor, sigmas, seed: int = 0,
                        batch_size: int = 1000) -> list[list[float]]:
    """Per model: accuracy under x + σ·ε (clipped) for each σ, with noise_curve's very draws."""
    x = check_inputs(stack, x, y)
    sigma = check_grid("sigmas", sigmas)
    check_batch_size(batch_size)
    generator = torch.Generator().manual_seed(int(seed))
    correct = torch.zeros(stack.k, len(sigma), dtype=torch.long)
    for start in range(0, x.shape[0], NOISE_BLOCK):
        block_x, block_y = x[start:start + NOISE_BLOCK], y[start:start + NOISE_BLOCK]
        unit = torch.randn(block_x.shape, generator=generator, dtype=block_x.dtype)  # as noise_curve draws it
        for lo, hi in _chunks(block_x.shape[0], stack.k, batch_size):
            xb, yb = _flat(block_x[lo:hi]).to(stack.device), block_y[lo:hi].to(stack.device)
            eb = _flat(unit[lo:hi]).to(stack.device)
            for j, s in enumerate(sigma):
                noisy = (xb + s * eb).clamp_(0.0, 1.0) if s > 0 else xb
                correct[:, j] += (stack(noisy).argmax(2) == yb[None]).sum(1).cpu()
    return (correct.double() / x.shape[0]).tolist()


# -- DeepFool -----------------------------------------------------------------------------------------------


def _backprop_hidden(stack: ModelStack, masks: list[Tensor], rows: Tensor) -> Tensor:
    """Rows on the last hidden layer [K, M, c, H_{L−1}] -> the first layer's output [K, M, c, H₁] (chain rule)."""
    k, m, c, _ = rows.shape
    g = rows * masks[-1][:, :, None, :].to(rows.dtype)
    for i in range(stack.n_layers - 2, 0, -1):  # hidden layers L−2 .. 1 (layer i maps H_{i-1} -> H_i)
        w = stack.weight(i)  # [K, H_i, H_{i−1}]
        g = torch.bmm(g.reshape(k, m * c, -1), w).reshape(k, m, c, -1) * masks[i - 1][:, :, None, :].to(g.dtype)
    return g


def _gather_rows(t: Tensor, order: Tensor) -> Tensor:
    """t [K, B, ...] -> t[k, order[k, j], ...]: [K, M, ...]."""
    index = order.reshape(*order.shape, *([1] * (t.dim() - 2))).expand(*order.shape, *t.shape[2:])
    return t.gather(1, index)


def _stacked_deepfool_batch(stack: ModelStack, x0: Tensor, labels: Tensor | None, p: str, steps: int,
                            candidates: int, overshoot: float) -> tuple[Tensor, Tensor, Tensor]:
    """x0 [B, D] shared -> (perturbations [K, B, D], fooled [K, B], clean prediction == reference [K, B])."""
    kk, n = stack.k, x0.shape[0]
    logits = stack(x0)  # [K, B, classes]
    c = min(candidates, logits.shape[2])
    classes = logits.argsort(dim=2).flip(2)[:, :, :c]  # [K, B, c] clean top-c, descending
    reference = labels[None].expand(kk, n) if labels is not None else classes[:, :, 0]
    x = x0.expand(kk, -1, -1).clone()
    p_total = torch.zeros_like(x)
    active = torch.ones(kk, n, dtype=torch.bool, device=x0.device)
    w_last = stack.weight(stack.n_layers - 1)  # [K, classes, H_{L−1}]
    first = stack.pixel_first_layer()  # [K, H₁, D]
    gram = torch.bmm(first, first.transpose(1, 2)) if p == "l2" else None  # [K, H₁, H₁]
    model_index = torch.arange(kk, device=x0.device)[:, None, None]
    for _ in range(steps):
        counts = active.sum(1)
        m = int(counts.max())
        if m == 0:
            break
        order = torch.argsort((~active).to(torch.int8), dim=1, stable=True)[:, :m]  # [K, M]: active ones first
        valid = torch.arange(m, device=x0.device)[None, :] < counts[:, None]
        logits, masks = stack.forward_with_masks(_gather_rows(x, order))
        ref = reference.gather(1, order)
        still = (logits.argmax(2) == ref) & valid  # [K, M]
        active.scatter_(1, order, still)  # fooled (and padding) rows leave; padding points at inactive rows
        if not bool(still.any()):
            break
        cls = _gather_rows(classes, order)  # [K, M, c]
        rows = logits.gather(2, cls)
        losses = rows[:, :, 1:] - rows[:, :, :1]  # [K, M, c−1]
        diffs = w_last[model_index, cls[:, :, 1:]] - w_last[model_index, cls[:, :, :1]]  # [K, M, c−1, H_{L−1}]
        hidden = _backprop_hidden(stack, masks, diffs)  # [K, M, c−1, H₁]
        if p == "linf":
            grads = torch.bmm(hidden.reshape(kk, m * (c - 1), -1), first).reshape(kk, m, c - 1, -1)
            distances = losses.abs() / (torch.linalg.vector_norm(grads, ord=1, dim=3) + 1e-8)
            best = distances.argmin(dim=2, keepdim=True)  # [K, M, 1]
            dist = distances.gather(2, best).squeeze(2) + 1e-4
            grad = grads.gather(2, best[..., None].expand(-1, -1, 1, grads.shape[3])).squeeze(2)  # [K, M, D]
            step = dist[..., None] * grad.sign()
        else:
            sq_norms = (torch.bmm(hidden.reshape(kk, m * (c - 1), -1), gram).reshape(hidden.shape) * hidden)
            distances = losses.abs() / (sq_norms.sum(dim=3).clamp_min_(0.0).sqrt() + 1e-8)
            best = distances.argmin(dim=2, keepdim=True)
            dist = distances.gather(2, best).squeeze(2) + 1e-4
            chosen = hidden.gather(2, best[..., None].expand(-1, -1, 1, hidden.shape[3])).squeeze(2)  # [K, M, H₁]
            grad = torch.bmm(chosen, first)  # [K, M, D]
            step = (dist / (grad.norm(dim=2) + 1e-8))[..., None] * grad
        km, jm = still.nonzero(as_tuple=True)
        idx = order[km, jm]
        p_total[km, idx] += step[km, jm]
        x[km, idx] = (x0[idx] + (1.0 + overshoot) * p_total[km, idx]).clamp_(0.0, 1.0)
    pert = x - x0
    fooled = stack((x0 + pert).clamp_(0.0, 1.0)).argmax(dim=2) != reference
    return pert, fooled, classes[:, :, 0] == reference


def stacked_deepfool_curve(stack: ModelStack, x: Tensor, y: Tensor, eps_grid, *, p: str = "linf",
                           steps: int = 50, candidates: int = 10, overshoot: float = 0.02,
                           batch_size: int = 1000) -> list[tuple[list[float], float]]:
    """Per model: (robust accuracy at each eps, median minimal perturbation norm), as deepfool_curve."""
    x = check_inputs(stack, x, y)
    eps = check_grid("eps_grid", eps_grid)
    if p not in NORMS:
        raise ValueError(f"p must be one of {NORMS}, got {p!r}")
    if steps < 1 or candidates < 2 or overshoot < 0:
        raise ValueError(f"need steps >= 1, candidates >= 2, overshoot >= 0; got {steps}, {candidates}, {overshoot}")
    check_batch_size(batch_size)
    robust = torch.zeros(stack.k, len(eps), dtype=torch.long)
    norm_parts, fooled_parts, correct_parts = [], [], []
    with torch.no_grad():
        for lo, hi in _chunks(x.shape[0], stack.k, batch_size):
            xb, yb = _flat(x[lo:hi]).to(stack.device), y[lo:hi].to(stack.device)
            pert, fooled, clean_correct = _stacked_deepfool_batch(stack, xb, yb, p, steps, candidates, overshoot)
            norms = pert.abs().amax(dim=2) if p == "linf" else pert.norm(dim=2)  # [K, b]
            for j, e in enumerate(eps):
                inside = clean_correct & (norms <= e)
                count = (inside & ~fooled).sum(1)
                if e == 0:
                    count += (clean_correct & ~inside).sum(1)
                else:
                    flat_pert = pert.reshape(-1, pert.shape[2])
                    moved = (xb[None] + project(flat_pert, e, p).reshape(pert.shape)).clamp_(0.0, 1.0)
                    kept = stack(moved).argmax(dim=2) == yb[None]
                    count += (clean_correct & ~inside & kept).sum(1)
                robust[:, j] += count.cpu()
            norm_parts.append(norms.cpu())
            fooled_parts.append(fooled.cpu())
            correct_parts.append(clean_correct.cpu())
    norms, fooled, clean_correct = (torch.cat(t, dim=1) for t in (norm_parts, fooled_parts, correct_parts))
    norms = torch.where(fooled, norms, torch.full_like(norms, float("inf")))
    curves = (robust.double() / x.shape[0]).tolist()
    return [(curves[i], _median(norms[i][clean_correct[i]])) for i in range(stack.k)]


# -- the suite ----------------------------------------------------------------------------------------------


def _rows_accuracy(stack, x, y, config):
    from backend.evaluate.suite import EvalRow

    acc, loss = stacked_accuracy_and_loss(stack, x, y, config.batch_size)
    return [[EvalRow("accuracy", None, a), EvalRow("loss", None, lo)] for a, lo in zip(acc, loss, strict=True)]


def _rows_fgsm(stack, x, y, config):
    from backend.evaluate.suite import EvalRow

    curves = stacked_fgsm_curve(stack, x, y, config.fgsm_eps, config.batch_size)
    return [[EvalRow("fgsm_acc", e, v) for e, v in zip(config.fgsm_eps, c, strict=True)] for c in curves]


def _rows_noise(stack, x, y, config):
    from backend.evaluate.suite import EvalRow

    curves = stacked_noise_curve(stack, x, y, config.noise_sigma, config.noise_seed, config.batch_size)
    return [[EvalRow("noise_acc", s, v) for s, v in zip(config.noise_sigma, c, strict=True)] for c in curves]


def _rows_deepfool(p: str):
    def rows(stack, x, y, config):
        from backend.evaluate.suite import EvalRow

        grid = config.deepfool_linf_eps if p == "linf" else config.deepfool_l2_eps
        results = stacked_deepfool_curve(stack, x, y, grid, p=p, steps=config.deepfool_steps,
                                         candidates=config.deepfool_candidates,
                                         overshoot=config.deepfool_overshoot, batch_size=config.batch_size)
        metric = f"deepfool_{p}"
        return [[*(EvalRow(f"{metric}_acc", e, v) for e, v in zip(grid, curve, strict=True)),
                 EvalRow(f"{metric}_median", None, median)] for curve, median in results]

    return rows


StackedMetric = Callable[[ModelStack, Tensor, Tensor, EvalConfig], list[list]]

# metric name (EvalConfig.metrics) -> fn(stack, x, y, config) -> one list of EvalRow per model, in stack order.
# Metrics without `stacked` in the catalogue are evaluated model by model (suite._metric_rows).
_rows_deepfool_linf = _rows_deepfool("linf")
_rows_deepfool_l2 = _rows_deepfool("l2")
STACKED_METRICS: dict[str, StackedMetric] = {  # from the catalogue's `stacked` entries (backend/metrics.py)
    name: metric.stacked_function() for name, metric in METRICS.items() if metric.stacked}


def evaluate_stack(models: Sequence[nn.Module | Mapping[str, Tensor]], x: Tensor, y: Tensor, config: EvalConfig,
                   *, device: str | torch.device | None = None, progress: ProgressFn | None = None) -> list[list]:
    """evaluate_model for K MLPs at once: one list of EvalRow per model (same rows, same order as alone).

    Metrics in STACKED_METRICS run on the stacked network; the rest run per model on its own MLP.
    """
    from backend.evaluate.suite import _as_model, _metric_rows, _take_subset, sanity_rows

    if not isinstance(config, EvalConfig):
        raise ValueError(f"config must be an EvalConfig, got {type(config).__name__}")
    config.validate()
    in_shape = tuple(x.shape[1:]) if x.ndim == 4 else None
    stack = ModelStack(models, device=device, in_shape=in_shape)
    x, y = _take_subset(x, y, config.subset)
    x = check_inputs(stack, x, y)
    out: list[list] = [[] for _ in range(stack.k)]
    singles = None
    for i, metric in enumerate(config.metrics):
        report(progress, "evaluate", i, len(config.metrics), f"{metric} on {x.shape[0]} samples × {stack.k} models")
        if metric in STACKED_METRICS:
            for rows, new in zip(out, STACKED_METRICS[metric](stack, x, y, config), strict=True):
                rows.extend(new)
        else:
            if singles is None:
                singles = [_as_model(m, x).to(stack.device) for m in models]
            for rows, model in zip(out, singles, strict=True):
                rows.extend(_metric_rows(metric, model, x.to(stack.device), y.to(stack.device), config))
    for rows in out:
        rows.extend(sanity_rows(rows, x.shape[0]))
    report(progress, "evaluate", len(config.metrics), len(config.metrics), "done")
    return out
