"""Zoo training: many seeded MLPs, K at a time, airbench style (whole split on the device, batched aug).

Every model's randomness comes from its own CPU `torch.Generator(seed)`: initial weights (nn.Linear's
default U(±1/√fan_in)), then per epoch the data order and the crop/flip draws. So a model's data stream
does not depend on which other models it is trained beside, and the same config + seed gives
bit-identical weights on the CPU.

All models of a group are trained as one stacked network: weights [K, out, in], activations [K, B, D],
matmuls as `baddbmm`. The loss is the sum over models of each model's own mean loss, so each model gets
exactly its own gradient; Adam and SGD act elementwise, so stacking changes nothing but speed. On CPU
K = 1 (one model at a time with the big batch); on CUDA K = len(seeds), capped by memory and MAX_STACK.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from backend.data import (
    DatasetInfo,
    crop_flip,
    crop_flip_params,
    dataset_info,
    load_split,
)
from backend.progress import ProgressFn, report
from backend.train_config import (  # noqa: F401 - re-exported: the declaration lives without torch
    MAX_LAYERS,
    MAX_PARAMS,
    MAX_WIDTH,
    TRAIN_VERSION,
    TrainConfig,
    _param_count,
    seeds_for,
)

MAX_STACK = 64  # models per stacked group on CUDA
REPORT_EVERY = 20  # steps between progress reports
PAD = 4  # random-crop padding (pixels)
EVAL_BATCH = 2000

# on_epoch(model index in the seeds list, epoch (1-based), mean training loss, training accuracy) after every
# epoch of every model: what the store's training curves record
EpochFn = Callable[[int, int, float, float], None]
# on_step(first model index, epochs done (a fraction), step, losses [K], accuracies [K]) every `curve_every`
# training steps of a group of K models: their mean loss and accuracy over the steps since the last call
StepFn = Callable[[int, float, int, list[float], list[float]], None]


@dataclass(frozen=True)
class TrainedModel:
    params: dict[str, Tensor]  # MLP state dict (CPU)
    seed: int
    seconds: float  # wall time of its stacked group divided by the group's size
    train_loss: float  # mean over the last epoch (augmented batches, without the penalty)
    train_acc: float
    test_acc: float


@dataclass(frozen=True)
class TrainData:
    """Everything training reads; `load_train_data` builds it from a dataset, tests inject tiny ones."""
    x_train: Tensor  # uint8 [N, C, H, W]
    y_train: Tensor  # int64 [N]
    x_test: Tensor
    y_test: Tensor
    info: DatasetInfo


def load_train_data(config: TrainConfig) -> TrainData:
    x_tr, y_tr = load_split(config.dataset, True)
    x_te, y_te = load_split(config.dataset, False)
    return TrainData(x_tr, y_tr, x_te, y_te, dataset_info(config.dataset))


# ---------------------------------------------------------------------------------------------- stacked MLP

def init_weights(layer_sizes: tuple[int, ...], generator: torch.Generator) -> list[tuple[Tensor, Tensor]]:
    """nn.Linear's default init (W, b ~ U(±1/√fan_in)), drawn from `generator` instead of global state."""
    out = []
    for fan_in, fan_out in zip(layer_sizes[:-1], layer_sizes[1:], strict=True):
        bound = 1.0 / math.sqrt(fan_in)
        w = torch.empty(fan_out, fan_in).uniform_(-bound, bound, generator=generator)
        b = torch.empty(fan_out).uniform_(-bound, bound, generator=generator)
        out.append((w, b))
    return out


def stacked_forward(weights: list[Tensor], biases: list[Tensor], h: Tensor) -> Tensor:
    """h [K, B, D] normalised inputs (or [B, D], shared by all K) -> logits [K, B, classes].

    Weights are stored transposed, [K, in, out], so every forward and backward GEMM reads and writes
    contiguous operands (no transposed gradient copies). K = 1 runs as plain addmm.
    """
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):  # w [K, in, out], b [K, out]
        if h.dim() == 2:
            h = torch.matmul(h, w) + b[:, None, :]
        elif w.shape[0] == 1:
            h = torch.addmm(b.squeeze(0), h.squeeze(0), w.squeeze(0)).unsqueeze(0)
        else:
            h = torch.baddbmm(b[:, None, :], h, w)
        if i < len(weights) - 1:
            h = torch.relu(h)
    return h


def pixel_affine(info: DatasetInfo, device) -> tuple[Tensor, Tensor]:
    """(scale, shift) [C, 1] with uint8 pixel * scale + shift == (pixel / 255 - mean) / std."""
    mean = torch.tensor(info.mean, dtype=torch.float32, device=device)
    std = torch.tensor(info.std, dtype=torch.float32, device=device)
    return (1.0 / (255.0 * std))[:, None], (-mean / std)[:, None]


def normalize_uint8(x: Tensor, scale: Tensor, shift: Tensor) -> Tensor:
    """uint8 x [B, C, H, W] -> float [B, C*H*W] normalised (MLP.normalize's math, as x * scale + shift)."""
    b, c = x.shape[:2]
    x = x.reshape(b, c, -1)
    if x.is_cuda:  # one kernel casts and scales; on CPU the cast-in-addcmul path is slower than three passes
        return torch.addcmul(shift, x, scale).reshape(b, -1)
    return x.float().mul_(scale).add_(shift).reshape(b, -1)


def penalty(weights: list[Tensor], reg: str) -> Tensor:
    """[K] Σ|W| (l1) or Σ W² (l2) per model over every linear layer's weight matrix; biases excluded."""
    if reg == "l1":
        return sum(w.abs().sum(dim=(1, 2)) for w in weights)
    return sum(w.square().sum(dim=(1, 2)) for w in weights)


def data_generators(seeds: list[int], init_generators: list[torch.Generator], device) -> list[torch.Generator]:
    """Each model's generator for its data order and crop/flip draws.

    On the CPU: the generator that drew its initial weights, continued (the stream every CPU run has
    always used). On another device: a generator *on that device*, seeded from the model's seed alone
    (sha256-derived), so a model's epochs are drawn where its batches are built and still do not depend
    on which models share its stack. Same distributions either way; the numbers differ by device.
    """
    device = torch.device(device)
    if device.type == "cpu":
        return list(init_generators)
    out = []
    for s in seeds:
        digest = hashlib.sha256(f"rebasin-data:{int(s)}".encode()).digest()
        out.append(torch.Generator(device=device).manual_seed(int.from_bytes(digest[:8], "big") >> 1))
    return out


def epoch_plan(generators: list[torch.Generator], n: int, augment: bool, device) -> dict[str, Tensor]:
    """Each model's data order for one epoch and its crop/flip draws, aligned with that order: [K, N].

    Draws happen on each generator's device (the training device for data_generators' CUDA
    generators: no host work, no copies), then the stacked plan moves to `device` (a no-op there).
    """
    orders, dys, dxs, flips = [], [], [], []
    for g in generators:
        orders.append(torch.randperm(n, generator=g, device=g.device))
        if augment:
            dy, dx, fl = crop_flip_params(n, g, PAD, True)
            dys.append(dy)
            dxs.append(dx)
            flips.append(fl)
    plan = {"order": torch.stack(orders).to(device)}
    if augment:
        plan.update(dy=torch.stack(dys).to(device), dx=torch.stack(dxs).to(device),
                    flip=torch.stack(flips).to(device))
    return plan


def gather_batch(x_train: Tensor, y_train: Tensor, plan: dict[str, Tensor], start: int, stop: int,
                 scale: Tensor, shift: Tensor) -> tuple[Tensor, Tensor]:
    """Slice [start, stop) of every model's epoch: inputs [K, b, D] (augmented, normalised), labels [K, b].

    Crop and flip run on the uint8 pixels (4x less memory traffic than float); padding is pixel 0.
    """
    idx = plan["order"][:, start:stop]  # [K, b]
    k, b = idx.shape
    x = x_train.index_select(0, idx.reshape(-1))  # uint8 [K*b, C, H, W]
    if "dy" in plan:
        x = crop_flip(x, plan["dy"][:, start:stop].reshape(-1), plan["dx"][:, start:stop].reshape(-1),
                      plan["flip"][:, start:stop].reshape(-1), PAD)
    return normalize_uint8(x, scale, shift).reshape(k, b, -1), y_train[idx]


# ---------------------------------------------------------------------------------------------- training

def _stack_size(n_models: int, layer_sizes: tuple[int, ...], batch: int, device: torch.device) -> int:
    if device.type != "cuda":
        return 1
    n_params = sum(a * b + b for a, b in zip(layer_sizes[:-1], layer_sizes[1:], strict=True))
    per_model = 4 * (5 * n_params + 3 * batch * sum(layer_sizes))  # params+grad+2 Adam+spare; activations
    free, _ = torch.cuda.mem_get_info(device)
    return max(1, min(n_models, MAX_STACK, int(0.5 * free) // per_model))


def _train_group(config: TrainConfig, seeds: list[int], data: TrainData, device: torch.device,
                 progress: ProgressFn | None, step_offset: int, total_steps: int, first_model: int,
                 n_models: int, on_epoch: EpochFn | None = None, on_step: StepFn | None = None,
                 curve_every: int | None = None) -> list[TrainedModel]:
    t0 = time.perf_counter()
    info = data.info
    sizes = (math.prod(info.in_shape), *config.widths, info.num_classes)
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    inits = [init_weights(sizes, g) for g in generators]  # per model: [(W, b), ...]
    generators = data_generators(seeds, generators, device)
    weights = [torch.stack([m[i][0].T for m in inits]).to(device).requires_grad_()  # [K, in, out]
               for i in range(len(sizes) - 1)]
    biases = [torch.stack([m[i][1] for m in inits]).to(device).requires_grad_() for i in range(len(sizes) - 1)]
    scale, shift = pixel_affine(info, device)

    n = data.x_train.shape[0] if config.train_subset is None else config.train_subset
    x_train, y_train = data.x_train[:n].to(device), data.y_train[:n].to(device)
    steps_per_epoch = math.ceil(n / config.batch_size)
    total = steps_per_epoch * config.epochs
    params = weights + biases
    opt = (torch.optim.Adam(params, lr=config.lr, fused=True) if config.optimizer == "adam"  # one pass
           else torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, fused=True))
    k = len(seeds)
    step = 0
    window_t, window_samples = time.perf_counter(), 0
    step_points = on_step is not None and curve_every is not None and curve_every >= 1
    if step_points:
        win_loss, win_correct, win_n = torch.zeros(k, device=device), torch.zeros(k, device=device), 0
    for epoch in range(config.epochs):
        plan = epoch_plan(generators, n, config.use_augment, device)
        loss_sum = torch.zeros(k, device=device)  # [K] summed over samples this epoch
        correct = torch.zeros(k, device=device)
        for s in range(steps_per_epoch):
            for group in opt.param_groups:  # cosine from lr to 0 over all steps
                group["lr"] = config.lr * 0.5 * (1 + math.cos(math.pi * step / total))
            x, y = gather_batch(x_train, y_train, plan, s * config.batch_size, (s + 1) * config.batch_size,
                                scale, shift)
            logits = stacked_forward(weights, biases, x)  # [K, b, classes]
            ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(1)  # [K]
            loss = ce.sum()
            if config.reg != "none":
                loss = loss + config.reg_strength * penalty(weights, config.reg).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                b = y.shape[1]
                loss_sum += ce.detach() * b
                hits = (logits.argmax(-1) == y).sum(1)
                correct += hits
                if step_points:
                    win_loss += ce.detach() * b
                    win_correct += hits
                    win_n += b
            step += 1
            if step_points and step % curve_every == 0:
                on_step(first_model, epoch + (s + 1) / steps_per_epoch, step, (win_loss / win_n).tolist(),
                        (win_correct / win_n).tolist())
                win_loss.zero_()
                win_correct.zero_()
                win_n = 0
            window_samples += k * y.shape[1]
            if step % REPORT_EVERY == 0 or s == steps_per_epoch - 1:
                now = time.perf_counter()
                seen = min((s + 1) * config.batch_size, n)
                which = "" if n_models == 1 else (f"model {first_model + 1} of {n_models} · " if k == 1 else
                                                  f"models {first_model + 1}-{first_model + k} of {n_models} · ")
                report(progress, "train", step_offset + step, total_steps,
                       f"{which}epoch {epoch + 1}/{config.epochs}",
                       loss=float(ce.detach().mean()), acc=float(correct.sum() / (k * seen)),
                       samples_per_s=window_samples / max(now - window_t, 1e-9), model=first_model)
                window_t, window_samples = now, 0
        if on_epoch is not None:
            losses, accs = (loss_sum / n).tolist(), (correct / n).tolist()
            for j in range(k):
                on_epoch(first_model + j, epoch + 1, float(losses[j]), float(accs[j]))

    with torch.no_grad():
        test_correct = torch.zeros(k, device=device)
        for start in range(0, data.x_test.shape[0], EVAL_BATCH):
            xb = normalize_uint8(data.x_test[start:start + EVAL_BATCH].to(device), scale, shift)  # [B, D]
            yb = data.y_test[start:start + EVAL_BATCH].to(device)
            test_correct += (stacked_forward(weights, biases, xb).argmax(-1) == yb).sum(1)
        test_acc = (test_correct / max(data.x_test.shape[0], 1)).cpu()
        train_loss, train_acc = (loss_sum / n).cpu(), (correct / n).cpu()
    seconds = (time.perf_counter() - t0) / k
    out = []
    for j, seed in enumerate(seeds):
        params_j = {"mean": torch.tensor(info.mean, dtype=torch.float32),
                    "std": torch.tensor(info.std, dtype=torch.float32)}
        for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
            params_j[f"layers.{i}.weight"] = w[j].detach().T.to("cpu", copy=True).contiguous()  # [out, in]
            params_j[f"layers.{i}.bias"] = b[j].detach().cpu().clone()
        out.append(TrainedModel(params_j, seed, seconds, float(train_loss[j]), float(train_acc[j]),
                                float(test_acc[j])))
    return out


def train_models(config: TrainConfig, seeds: list[int], *, device: str | torch.device | None = None,
                 progress: ProgressFn | None = None, data: TrainData | None = None,
                 stack: int | None = None, on_epoch: EpochFn | None = None, on_step: StepFn | None = None,
                 curve_every: int | None = None) -> list[TrainedModel]:
    """Train one model per seed. `data` defaults to the config's dataset; `stack` overrides K (tests);
    `on_epoch` receives every model's loss and accuracy after each epoch (see EpochFn), `on_step` their
    means over every `curve_every` training steps (see StepFn; the models' numbers are unchanged)."""
    config.validate()
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("train_models needs at least one seed")
    device = torch.device(device) if device is not None else \
        torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data = data if data is not None else load_train_data(config)
    if data.x_train.dtype != torch.uint8 or data.x_train.dim() != 4:
        raise ValueError("training images must be a uint8 tensor [N, C, H, W]")
    if tuple(data.x_train.shape[1:]) != data.info.in_shape:
        raise ValueError(f"images of shape {tuple(data.x_train.shape[1:])} do not match the dataset's "
                         f"{data.info.in_shape}")
    if config.train_subset is not None and config.train_subset > data.x_train.shape[0]:
        raise ValueError(f"train_subset {config.train_subset} is larger than the training split "
                         f"({data.x_train.shape[0]} samples)")
    if stack is not None and stack < 1:
        raise ValueError(f"stack must be >= 1, got {stack}")
    if curve_every is not None and (isinstance(curve_every, bool) or not isinstance(curve_every, int)
                                    or curve_every < 1):
        raise ValueError(f"curve points every N steps needs a whole N >= 1, got {curve_every!r}")
    sizes = (math.prod(data.info.in_shape), *config.widths, data.info.num_classes)
    k = stack or _stack_size(len(seeds), sizes, config.batch_size, device)
    n = data.x_train.shape[0] if config.train_subset is None else config.train_subset
    steps_per_model = math.ceil(n / config.batch_size) * config.epochs
    groups = [seeds[i:i + k] for i in range(0, len(seeds), k)]
    total_steps = steps_per_model * len(groups)
    results: list[TrainedModel] = []
    for g, group in enumerate(groups):
        results += _train_group(config, group, data, device, progress, g * steps_per_model, total_steps,
                                g * k, len(seeds), on_epoch, on_step, curve_every)
    return results
