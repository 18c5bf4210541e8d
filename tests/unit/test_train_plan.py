"""Per-epoch data plans: drawn on the training device, same statistics, independent of stack partners."""

from __future__ import annotations

import pytest
import torch

from backend.train import PAD, data_generators, epoch_plan

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _plan(seeds, device, n=6000):
    init = [torch.Generator().manual_seed(s) for s in seeds]
    return epoch_plan(data_generators(seeds, init, device), n, True, device)


def test_cpu_plans_continue_the_init_generators():
    init = [torch.Generator().manual_seed(s) for s in (1, 2)]
    assert data_generators([1, 2], init, "cpu") == init  # the CPU stream is unchanged


@pytest.mark.parametrize("device", DEVICES)
def test_plan_statistics_and_independence(device):
    n = 6000
    plan = _plan([11, 12, 13], device, n)
    assert {t.device.type for t in plan.values()} == {torch.device(device).type}
    assert plan["order"].shape == (3, n)
    for row in plan["order"].cpu():
        assert torch.equal(row.sort().values, torch.arange(n))  # every sample once per epoch
    for name in ("dy", "dx"):
        counts = torch.bincount(plan[name].cpu().reshape(-1), minlength=2 * PAD + 1).double()
        assert counts.numel() == 2 * PAD + 1
        expected = 3 * n / (2 * PAD + 1)  # uniform offsets: each within 5 sigma of its expectation
        assert ((counts - expected).abs() < 5 * expected ** 0.5).all(), counts
    share = plan["flip"].double().mean().item()
    assert abs(share - 0.5) < 5 * (0.25 / (3 * n)) ** 0.5
    # a model's stream depends on its seed only, not on its stack partners, and repeats
    alone = _plan([12], device, n)
    again = _plan([12, 99], device, n)
    for key in plan:
        assert torch.equal(alone[key][0], plan[key][1]) and torch.equal(again[key][0], alone[key][0])
