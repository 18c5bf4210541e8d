"""Our batched FGSM / DeepFool curves agree with foolbox 3 (checks in tests/agreement.py) on a small
synthetic model; the same checks on a Fashion-MNIST model live in tests/realdata/test_attack_agreement.py."""

from __future__ import annotations

import pytest

from tests.agreement import check_deepfool, check_fgsm, synthetic_data, trained


@pytest.fixture(scope="module")
def setup():
    return trained(synthetic_data())


def test_fgsm_agrees_with_foolbox(setup):
    check_fgsm(*setup)


@pytest.mark.parametrize("p", ["linf", "l2"])
def test_deepfool_agrees_with_foolbox(setup, p):
    check_deepfool(*setup, p)
