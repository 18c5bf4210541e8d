"""The peer-agreement checks of tests/agreement.py (FGSM, DeepFool and PGD vs foolbox 3, APGD-CE vs
torchattacks) on a small MLP trained on real Fashion-MNIST (Debian's dataset-fashion-mnist)."""

from __future__ import annotations

import pytest

from tests.agreement import check_apgd, check_deepfool, check_fgsm, check_pgd, fashion_data, trained

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def setup():
    from tests.conftest import FASHION_DIR, _require

    _require((FASHION_DIR / "t10k-images-idx3-ubyte.gz").exists(),
             "Debian package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist)")
    return trained(fashion_data())


def test_fgsm_agrees_with_foolbox(setup):
    check_fgsm(*setup)


@pytest.mark.parametrize("p", ["linf", "l2"])
def test_deepfool_agrees_with_foolbox(setup, p):
    check_deepfool(*setup, p)


@pytest.mark.parametrize("p", ["linf", "l2"])
def test_apgd_agrees_with_torchattacks(setup, p):
    check_apgd(*setup, p)


@pytest.mark.parametrize("p", ["linf", "l2"])
def test_pgd_agrees_with_foolbox(setup, p):
    check_pgd(*setup, p)
