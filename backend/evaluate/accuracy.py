"""Clean accuracy and mean cross-entropy on a fixed test subset."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from backend.evaluate.inputs import check_batch_size, check_inputs, model_device
from backend.metrics import EvalRow


@torch.no_grad()
def accuracy_and_loss(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 1000) -> tuple[float, float]:
    """(share of samples classified correctly, mean CE loss), computed in batches without autograd."""
    x = check_inputs(model, x, y)
    check_batch_size(batch_size)
    device = model_device(model)
    correct, loss_sum = 0, 0.0
    for i in range(0, x.shape[0], batch_size):
        xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
        logits = model(xb)  # [B, K]
        correct += int((logits.argmax(dim=1) == yb).sum())
        loss_sum += float(F.cross_entropy(logits.float(), yb, reduction="sum"))
    n = x.shape[0]
    return correct / n, loss_sum / n


def accuracy_rows(model: nn.Module, x: Tensor, y: Tensor, config) -> list[EvalRow]:
    """Catalogue face: accuracy and mean cross-entropy on (x, y)."""
    acc, loss = accuracy_and_loss(model, x, y, config.batch_size)
    return [EvalRow("accuracy", None, acc), EvalRow("loss", None, loss)]
