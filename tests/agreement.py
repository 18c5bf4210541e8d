"""Agreement with the peer libraries (foolbox 3, torchattacks) on the same trained model and samples.

The checks are plain functions so the fast synthetic model (tests/unit) and the Fashion-MNIST model
(tests/realdata, marker `realdata`) run the same assertions. FGSM / DeepFool: within 0.5 percentage points
at every eps (on 300 samples at most one sample may differ: float rounding between the analytic Jacobian and
autograd at a decision boundary). APGD-CE vs torchattacks within 1 point; PGD vs foolbox within 2 points
(both start at a random point of the ball, with different random numbers).
"""

from __future__ import annotations

import foolbox as fb
import torch
import torch.nn.functional as F

from backend.evaluate.deepfool import deepfool_curve
from backend.evaluate.fgsm import fgsm_curve
from backend.evaluate.strong import strong_curve
from backend.models import MLP, MLPConfig

LINF = [0.0, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.1]
L2 = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5]
STRONG_LINF = [0.0, 0.01, 0.02, 0.05]
STRONG_L2 = [0.0, 0.1, 0.3, 0.6]
TOLERANCE = 0.005
APGD_TOLERANCE = 0.01
PGD_TOLERANCE = 0.02
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


def trained(data) -> tuple[MLP, torch.Tensor, torch.Tensor]:
    """(model, x, y): a decent but imperfect model and its 300 test samples."""
    config, (x_train, y_train), (x, y) = data
    model = train(config, x_train, y_train)
    clean = float((model(x).argmax(1) == y).double().mean())
    assert 0.5 < clean < 1.0, f"the agreement model should be decent but imperfect, got accuracy {clean}"
    return model, x, y


def worst_gap(ours, theirs) -> float:
    return max(abs(a - b) for a, b in zip(ours, theirs, strict=True))


def no_weaker(ours, theirs, tolerance, what) -> None:
    """The default (bisecting, warm-started) strong-attack search: an upper bound at least as tight as the peer's
    up to noise, and not far from it either way. "walk" (a random start at every eps, as the peers) is held to
    plain agreement."""
    assert max(a - b for a, b in zip(ours, theirs, strict=True)) <= tolerance, what
    assert worst_gap(ours, theirs) <= 2 * tolerance, what


def foolbox_curve(attack, model, x, y, eps) -> list[float]:
    _, _, success = attack(fb.PyTorchModel(model, bounds=(0, 1)), x, y, epsilons=eps)  # success [E, N]
    return (1.0 - success.double().mean(dim=1)).tolist()


def check_fgsm(model, x, y) -> None:
    ours = fgsm_curve(model, x, y, LINF, batch_size=128)
    theirs = foolbox_curve(fb.attacks.FGSM(), model, x, y, LINF)
    assert worst_gap(ours, theirs) <= TOLERANCE, f"FGSM: ours {ours} vs foolbox {theirs}"
    assert ours[-1] < ours[0]


def check_deepfool(model, x, y, p: str) -> None:
    grid = LINF if p == "linf" else L2
    kwargs = dict(steps=50, candidates=10, overshoot=0.02)
    attack = fb.attacks.LinfDeepFoolAttack(**kwargs) if p == "linf" else fb.attacks.L2DeepFoolAttack(**kwargs)
    ours, median = deepfool_curve(model, x, y, grid, p=p, batch_size=128, **kwargs)
    theirs = foolbox_curve(attack, model, x, y, grid)
    assert worst_gap(ours, theirs) <= TOLERANCE, f"DeepFool {p}: ours {ours} vs foolbox {theirs}"
    assert ours[-1] < ours[0] and 0 < median < float("inf")


def check_apgd(model, x, y, p: str) -> None:
    import torchattacks  # installed --no-deps by scripts/setup-env (see pyproject's test extra)

    grid = STRONG_LINF if p == "linf" else STRONG_L2
    walk = strong_curve(model, x, y, grid, attack="apgd_ce", norm=p, steps=50, search="walk")
    ours = strong_curve(model, x, y, grid, attack="apgd_ce", norm=p, steps=50)
    theirs = [ours[0]]
    for eps in grid[1:]:
        attack = torchattacks.APGD(model, norm="Linf" if p == "linf" else "L2", eps=eps, steps=50, n_restarts=1,
                                   loss="ce", seed=0)
        theirs.append(float((model(attack(x, y)).argmax(1) == y).double().mean()))
    assert worst_gap(walk, theirs) <= APGD_TOLERANCE, f"APGD {p}: ours (walk) {walk} vs torchattacks {theirs}"
    no_weaker(ours, theirs, APGD_TOLERANCE, f"APGD {p}: ours (bisect) {ours} vs torchattacks {theirs}")
    assert ours[-1] < ours[0]


def check_pgd(model, x, y, p: str) -> None:
    grid = STRONG_LINF if p == "linf" else STRONG_L2
    walk = strong_curve(model, x, y, grid, attack="pgd", norm=p, steps=40, search="walk")
    ours = strong_curve(model, x, y, grid, attack="pgd", norm=p, steps=40)
    attack = (fb.attacks.LinfPGD if p == "linf" else fb.attacks.L2PGD)(steps=40, rel_stepsize=2.5 / 40)
    torch.manual_seed(0)  # foolbox draws its random start from the global generator
    theirs = foolbox_curve(attack, model, x, y, grid)
    assert worst_gap(walk, theirs) <= PGD_TOLERANCE, f"PGD {p}: ours (walk) {walk} vs foolbox {theirs}"
    no_weaker(ours, theirs, PGD_TOLERANCE, f"PGD {p}: ours (bisect) {ours} vs foolbox {theirs}")
