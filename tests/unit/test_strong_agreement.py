"""Our strong attacks agree with the peers at equal settings (checks in tests/agreement.py) on a small
synthetic model: APGD-CE with torchattacks' APGD and PGD with foolbox 3's PGD. The Fashion-MNIST model:
tests/realdata/test_attack_agreement.py."""

from __future__ import annotations

import pytest

from tests.agreement import check_apgd, check_pgd, synthetic_data, trained


@pytest.fixture(scope="module")
def setup():
    return trained(synthetic_data())


@pytest.mark.parametrize("p", ["linf", "l2"])
def test_apgd_agrees_with_torchattacks(setup, p):
    check_apgd(*setup, p)


@pytest.mark.parametrize("p", ["linf", "l2"])
def test_pgd_agrees_with_foolbox(setup, p):
    check_pgd(*setup, p)
