"""Weight norm, exact spectral norms, global and local (Avant & Morgansen) Lipschitz bounds on tiny MLPs."""

from __future__ import annotations

import math

import pytest
import torch

from backend.evaluate.lipschitz import (
    KINDS,
    global_lipschitz,
    local_lipschitz,
    local_lipschitz_naive,
    local_lipschitz_summary,
)
from backend.evaluate.norms import folded_layers, spectral_norms, weight_norm
from backend.models import MLP, MLPConfig, mlp_from_state_dict

F64 = torch.float64


def random_mlp(seed: int, widths=(16, 12, 8), in_shape=(2, 3, 3), mean=(0.3, 0.6), std=(0.2, 0.5)) -> MLP:
    torch.manual_seed(seed)
    return MLP(MLPConfig(in_shape=in_shape, widths=widths, num_classes=4, mean=mean, std=std)).double().eval()


def jacobian_norms(model: MLP, x_flat) -> torch.Tensor:
    """Spectral norm of the input Jacobian at each row of x_flat [N, D]: [N]."""
    def f(x):
        return model(x[None])[0]
    jac = torch.func.vmap(torch.func.jacrev(f))(x_flat)  # [N, K, D]
    return torch.linalg.matrix_norm(jac, ord=2).detach()


def sample_ball(center, radius: float, n: int, gen, on_sphere: bool = False):
    """n points uniformly in (or on) the L2 ball around center [D]: [n, D]."""
    d = torch.randn(n, center.numel(), generator=gen, dtype=center.dtype)
    d = d / torch.linalg.vector_norm(d, dim=1, keepdim=True)
    r = torch.ones(n, 1, dtype=center.dtype) if on_sphere else torch.rand(n, 1, generator=gen, dtype=center.dtype) ** (1 / center.numel())
    return center[None] + radius * r * d


def test_weight_norm_known_answer():
    params = {
        "mean": torch.tensor([0.5]), "std": torch.tensor([0.25]),
        "layers.0.weight": torch.tensor([[1.0, 2.0, 2.0, 4.0], [0.0, 0.0, 0.0, 0.0]]),  # ‖·‖_F = 5
        "layers.0.bias": torch.tensor([3.0, 4.0]),  # 5
        "layers.1.weight": torch.tensor([[6.0, 8.0]]),  # 10
        "layers.1.bias": torch.tensor([-1.0]),  # 1
    }
    assert weight_norm(params) == pytest.approx(21.0)
    model = mlp_from_state_dict(params, in_shape=(1, 2, 2))
    assert weight_norm(model) == pytest.approx(21.0)
    # as stored: the normalisation buffers do not enter the weight norm
    assert weight_norm({**params, "std": torch.tensor([3.0]), "mean": torch.tensor([0.1])}) == pytest.approx(21.0)


def test_weight_norm_rejects_non_mlp():
    with pytest.raises(ValueError):
        weight_norm({"w": torch.ones(2, 2)})
    with pytest.raises(ValueError):
        weight_norm({"mean": torch.zeros(1), "std": torch.ones(1), "layers.0.weight": torch.ones(2, 4)})


def test_spectral_norms_exact_and_folded(make_tiny_params):
    params = make_tiny_params(3)
    w0 = params["layers.0.weight"].double() / 0.25  # tiny_config: one channel, std 0.25
    expected = [torch.linalg.matrix_norm(w0, ord=2).item()] + [
        torch.linalg.matrix_norm(params[f"layers.{i}.weight"].double(), ord=2).item() for i in (1, 2)]
    assert spectral_norms(params) == pytest.approx(expected, rel=1e-10)
    assert global_lipschitz(params) == pytest.approx(math.prod(expected), rel=1e-10)


def test_folding_matches_prescaled_unit_normalisation():
    model = random_mlp(1)
    x = torch.rand(7, 2, 3, 3, dtype=F64)
    layers = folded_layers(model)
    plain = MLP(MLPConfig(in_shape=(2, 3, 3), widths=(16, 12, 8), num_classes=4, mean=(0.0, 0.0), std=(1.0, 1.0))).double()
    with torch.no_grad():
        for layer, (w, b) in zip(plain.layers, layers, strict=True):
            layer.weight.copy_(w)
            layer.bias.copy_(b)
    torch.testing.assert_close(plain(x), model(x))  # the fold is the same function on pixels
    w_first = model.layers[0].weight.detach()
    std_feat = torch.tensor([0.2] * 9 + [0.5] * 9, dtype=F64)  # channel-major: 9 features per channel
    torch.testing.assert_close(layers[0][0], w_first / std_feat)
    assert spectral_norms(plain) == pytest.approx(spectral_norms(model), rel=1e-10)
    assert global_lipschitz(plain) == pytest.approx(global_lipschitz(model), rel=1e-10)
    for kind in KINDS:
        torch.testing.assert_close(local_lipschitz(plain, x, 0.3, kind=kind, dtype=F64),
                                   local_lipschitz(model, x, 0.3, kind=kind, dtype=F64))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_global_bound_above_every_sampled_jacobian(seed):
    model = random_mlp(seed)
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(300, 18, generator=gen, dtype=F64)
    norms = jacobian_norms(model, x)
    assert norms.max() > 0
    assert float(norms.max()) <= global_lipschitz(model) * (1 + 1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("radius", [0.05, 0.5])
def test_local_bounds_above_brute_force_and_below_global(seed, radius):
    model = random_mlp(seed)
    gen = torch.Generator().manual_seed(100 + seed)
    centers = torch.rand(3, 18, generator=gen, dtype=F64)
    centre_bound = local_lipschitz(model, centers, radius, kind="centre", dtype=F64)
    ball_bound = local_lipschitz(model, centers, radius, kind="ball", dtype=F64)
    glob = global_lipschitz(model)
    assert (centre_bound <= ball_bound * (1 + 1e-9)).all()
    assert (ball_bound <= glob * (1 + 1e-9)).all()
    with torch.no_grad():
        for p, x0 in enumerate(centers):
            inside = torch.cat([sample_ball(x0, radius, 400, gen), sample_ball(x0, radius, 400, gen, on_sphere=True)])
            # "ball": the sup of the Jacobian's norm over the ball, and any two-point ratio in it
            assert float(jacobian_norms(model, inside).max()) <= ball_bound[p] * (1 + 1e-9)
            fx = model(inside)
            half = inside.shape[0] // 2
            pair_ratio = (torch.linalg.vector_norm(fx[:half] - fx[half:], dim=1)
                          / torch.linalg.vector_norm(inside[:half] - inside[half:], dim=1))
            assert float(pair_ratio.max()) <= ball_bound[p] * (1 + 1e-9)
            # "centre" (the paper's): ratios against the centre, including along a line through it
            steps = torch.linspace(-1, 1, 200, dtype=F64)[:, None] * radius  # even count: never the centre
            direction = inside[-1] - x0
            line = x0[None] + steps * direction[None] / torch.linalg.vector_norm(direction)
            probes = torch.cat([inside, line])
            ratio = (torch.linalg.vector_norm(model(probes) - model(x0[None]), dim=1)
                     / torch.linalg.vector_norm(probes - x0[None], dim=1))
            assert float(ratio.max()) <= centre_bound[p] * (1 + 1e-9)


def test_tiny_radius_gives_the_product_over_the_centre_activation_pattern():
    """With a radius too small for any ReLU to flip, both bounds are Π_i ‖W_i diag(active_{i-1})‖₂ with
    the rows of W_i cut to the units active at the centre (a known answer computed here by hand)."""
    model = random_mlp(5, widths=(10, 7))
    x = torch.rand(6, 18, generator=torch.Generator().manual_seed(5), dtype=F64)
    layers = folded_layers(model)
    expected = []
    for x0 in x:
        h, cols, prod = x0, torch.ones(18, dtype=torch.bool), 1.0
        for i, (w, b) in enumerate(layers):
            y = w @ h + b
            rows = y > 0 if i < len(layers) - 1 else torch.ones_like(y, dtype=torch.bool)
            prod *= torch.linalg.matrix_norm(w[rows][:, cols], ord=2).item()
            h, cols = torch.relu(y), rows
        expected.append(prod)
    expected = torch.tensor(expected, dtype=F64)
    for kind in KINDS:
        torch.testing.assert_close(local_lipschitz(model, x, 1e-9, kind=kind, dtype=F64), expected)
    assert (jacobian_norms(model, x) <= expected * (1 + 1e-9)).all()


@pytest.mark.parametrize("kind", KINDS)
def test_local_bound_monotone_in_radius(kind):
    model = random_mlp(7)
    x = torch.rand(5, 2, 3, 3, generator=torch.Generator().manual_seed(7), dtype=F64)
    radii = [1e-4, 1e-3, 1e-2, 0.05, 0.1, 0.3, 1.0, 3.0, 30.0]
    bounds = torch.stack([local_lipschitz(model, x, r, kind=kind, dtype=F64) for r in radii])  # [R, P]
    assert (bounds[1:] >= bounds[:-1] * (1 - 1e-12)).all()
    assert bounds[0].max() < bounds[-1].max()  # it does get tighter for small radii
    assert float(bounds.max()) <= global_lipschitz(model) * (1 + 1e-9)


@pytest.mark.parametrize("kind", KINDS)
def test_batched_matches_naive_reference_and_batch_size(kind, make_tiny_params):
    model = mlp_from_state_dict(make_tiny_params(2))
    x = torch.rand(9, 1, 4, 4, generator=torch.Generator().manual_seed(2))
    batched = local_lipschitz(model, x, 0.2, kind=kind, dtype=F64)
    torch.testing.assert_close(batched, local_lipschitz_naive(model, x, 0.2, kind=kind, dtype=F64))
    torch.testing.assert_close(batched, local_lipschitz(model, x, 0.2, kind=kind, batch_size=2, dtype=F64))
    f32 = local_lipschitz(model.state_dict(), x, 0.2, kind=kind)  # params work too; float32 default
    torch.testing.assert_close(f32, batched.float(), rtol=1e-4, atol=1e-5)


def test_summary_mean_and_std(make_tiny_params):
    params = make_tiny_params(4)
    x = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(4))
    bounds = local_lipschitz(params, x, 0.1, dtype=F64)
    mean, std = local_lipschitz_summary(params, x, 0.1, dtype=F64)
    assert mean == pytest.approx(float(bounds.mean()))
    assert std == pytest.approx(float(bounds.std()))
    assert local_lipschitz_summary(params, x[:1], 0.1)[1] == 0.0


@pytest.mark.parametrize("radius", [0, -0.1, float("nan"), float("inf"), True, "0.1"])
def test_bad_radius_raises(radius, make_tiny_params):
    with pytest.raises(ValueError):
        local_lipschitz(make_tiny_params(0), torch.rand(2, 1, 4, 4), radius)


def test_bad_points_and_options_raise(make_tiny_params, tiny_config):
    params = make_tiny_params(0)
    model = MLP(tiny_config)
    bad_points = [torch.rand(2, 1, 5, 4), torch.rand(2, 15), torch.rand(0, 1, 4, 4), torch.rand(16),
                  torch.rand(2, 1, 4, 4) * 2, -torch.rand(2, 1, 4, 4), torch.full((2, 16), float("nan"))]
    for x in bad_points:
        with pytest.raises(ValueError):
            local_lipschitz(params, x, 0.1)
    with pytest.raises(ValueError):
        local_lipschitz(model, torch.rand(2, 2, 2, 4), 0.1)  # 16 features, but not the model's (1, 4, 4)
    with pytest.raises(ValueError):
        local_lipschitz(params, torch.rand(2, 1, 4, 4), 0.1, kind="sup")
    with pytest.raises(ValueError):
        local_lipschitz(params, torch.rand(2, 1, 4, 4), 0.1, batch_size=0)
