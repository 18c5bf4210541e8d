"""Our batched FGSM / DeepFool curves agree with foolbox 3 on the same trained model and samples.

The tolerance is 0.5 percentage points at every eps (on 300 samples: at most one sample may differ,
which float rounding between the analytic Jacobian and autograd can cause at a decision boundary).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from backend.evaluate.deepfool import deepfool_curve
from backend.evaluate.fgsm import fgsm_curve
from backend.models import MLP, MLPConfig

fb = pytest.importorskip("foolbox")

LINF = [0.0, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.1]
L2 = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5]
TOLERANCE = 0.005
N_TEST = 300


def synthetic_data():
    """10 prototype images (1×8×8) plus heavy noise: an MLP gets most, but not all, right."""
    g = torch.Generator().manual_seed(7)
    protos = 0.2 + 0.6 * torch.rand(10, 1, 8, 8, generator=g)
    y = torch.randint(0, 10, (3000 + N_TEST,), generator=g)
    x = (protos[y] + 0.3 * torch.randn(len(y), 1, 8, 8, generator=g)).clamp(0, 1)
    config = MLPConfig(in_shape=(1, 8, 8), widths=(32, 16), num_classes=10, mean=(0.5,), std=(0.25,))
    return config, (x[N_TEST:], y[N_TEST:]), (x[:N_TEST], y[:N_TEST])


def fashion_data():
    from backend.data import dataset_info, load_split, to_float

    x, y = load_split("fashion_mnist", train=False, download=False)
    x = to_float(x)
    info = dataset_info("fashion_mnist")
    config = MLPConfig(in_shape=tuple(info.in_shape), widths=(32, 16), num_classes=10,
                       mean=tuple(info.mean), std=tuple(info.std))
    return config, (x[1000:4000], y[1000:4000]), (x[:N_TEST], y[:N_TEST])


def train(config, x, y, epochs: int = 4) -> MLP:
    torch.manual_seed(0)
    model = MLP(config)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    for _ in range(epochs):
        for i in range(0, len(x), 100):
            loss = F.cross_entropy(model(x[i:i + 100]), y[i:i + 100])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def foolbox_curve(attack, model, x, y, eps) -> list[float]:
    _, _, success = attack(fb.PyTorchModel(model, bounds=(0, 1)), x, y, epsilons=eps)  # success [E, N]
    return (1.0 - success.double().mean(dim=1)).tolist()


@pytest.fixture(scope="module", params=["synthetic", pytest.param("fashion", marks=pytest.mark.realdata)])
def setup(request):
    if request.param == "fashion":
        from tests.conftest import FASHION_DIR, _require

        _require((FASHION_DIR / "t10k-images-idx3-ubyte.gz").exists(),
                 "Debian package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist)")
    config, (x_train, y_train), (x, y) = synthetic_data() if request.param == "synthetic" else fashion_data()
    model = train(config, x_train, y_train)
    clean = float((model(x).argmax(1) == y).double().mean())
    assert 0.5 < clean < 1.0, f"the agreement model should be decent but imperfect, got accuracy {clean}"
    return model, x, y


def assert_close_curves(ours, theirs, what):
    worst = max(abs(a - b) for a, b in zip(ours, theirs, strict=True))
    assert worst <= TOLERANCE, f"{what}: ours {ours} vs foolbox {theirs} (worst gap {worst:.4f})"


def test_fgsm_agrees_with_foolbox(setup):
    model, x, y = setup
    ours = fgsm_curve(model, x, y, LINF, batch_size=128)
    theirs = foolbox_curve(fb.attacks.FGSM(), model, x, y, LINF)
    assert_close_curves(ours, theirs, "FGSM")
    assert ours[-1] < ours[0]


@pytest.mark.parametrize(("p", "grid"), [("linf", LINF), ("l2", L2)])
def test_deepfool_agrees_with_foolbox(setup, p, grid):
    model, x, y = setup
    kwargs = dict(steps=50, candidates=10, overshoot=0.02)
    attack = fb.attacks.LinfDeepFoolAttack(**kwargs) if p == "linf" else fb.attacks.L2DeepFoolAttack(**kwargs)
    ours, median = deepfool_curve(model, x, y, grid, p=p, batch_size=128, **kwargs)
    theirs = foolbox_curve(attack, model, x, y, grid)
    assert_close_curves(ours, theirs, f"DeepFool {p}")
    assert ours[-1] < ours[0] and 0 < median < float("inf")
