"""The distillation losses against hand-computed references."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from simtools.distill import losses  # noqa: E402


def _softmax(z: list[float], t: float) -> list[float]:
    e = [math.exp(v / t) for v in z]
    return [v / sum(e) for v in e]


def test_soft_loss_by_hand() -> None:
    z_s, z_t, t = [1.0, 0.0, -1.0], [2.0, 1.0, 0.0], 2.0
    p_t, p_s = _softmax(z_t, t), _softmax(z_s, t)
    expected = -t * t * sum(a * math.log(b) for a, b in zip(p_t, p_s, strict=True))
    got = losses.soft_loss(torch.tensor([z_s]), torch.tensor([z_t]), t)
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_t_squared_keeps_gradient_scale() -> None:
    gen = torch.Generator().manual_seed(0)
    z_t = torch.randn(64, 5, generator=gen) * 3
    z_s0 = torch.randn(64, 5, generator=gen) * 3
    norms = {}
    for t in (5.0, 10.0, 20.0):
        z_s = z_s0.clone().requires_grad_(True)
        losses.soft_loss(z_s, z_t, t).backward()
        norms[t] = float(z_s.grad.norm())
    # without T^2 the gradient would shrink by 4x from T=10 to T=20; with it, it stays put
    assert norms[20.0] / norms[10.0] == pytest.approx(1.0, abs=0.1)
    assert norms[10.0] / norms[5.0] == pytest.approx(1.0, abs=0.15)


def test_soft_target_loss_mixes_hard_and_soft() -> None:
    z_s, z_t = torch.tensor([[1.0, 0.0, -1.0]]), torch.tensor([[0.0, 2.0, 0.0]])
    y = torch.tensor([1])
    hard = losses.hard_loss(z_s, y)
    soft = losses.soft_loss(z_s, z_t, 3.0)
    mixed = losses.soft_target_loss(z_s, z_t, y, temperature=3.0, alpha=0.25)
    assert float(mixed) == pytest.approx(0.25 * float(soft) + 0.75 * float(hard), rel=1e-6)
    assert float(losses.soft_target_loss(z_s, z_t, y, temperature=3.0, alpha=0.0)) == \
        pytest.approx(float(hard))


def test_soft_target_loss_needs_labels_below_alpha_one() -> None:
    z = torch.zeros(1, 3)
    with pytest.raises(ValueError, match="hard labels"):
        losses.soft_target_loss(z, z, None, temperature=2.0, alpha=0.5)


def test_logit_loss_by_hand_and_shift_invariant() -> None:
    z_s, z_t = torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[0.0, 0.0, 3.0]])
    # centred: s = [-1, 0, 1], t = [-1, -1, 2]; squared error 0 + 1 + 1 = 2, over 3 classes
    assert float(losses.logit_loss(z_s, z_t)) == pytest.approx(2 / 3)
    assert float(losses.logit_loss(z_s + 5, z_t - 7)) == pytest.approx(2 / 3)


def test_teacher_noise_fraction_and_seed() -> None:
    z = torch.zeros(1000, 4)
    assert torch.equal(losses.add_teacher_noise(z, std=1.0, fraction=0.0), z)
    a = losses.add_teacher_noise(z, std=1.0, fraction=0.3, generator=torch.Generator().manual_seed(1))
    b = losses.add_teacher_noise(z, std=1.0, fraction=0.3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    noisy_rows = float((a.abs().sum(dim=1) > 0).float().mean())
    assert noisy_rows == pytest.approx(0.3, abs=0.05)
    assert float(a[a != 0].std()) == pytest.approx(1.0, abs=0.1)


def test_cosine_loss() -> None:
    v = torch.tensor([[1.0, 2.0], [0.0, 1.0]])
    assert float(losses.cosine_loss(v, 3 * v)) == pytest.approx(0.0, abs=1e-6)
    assert float(losses.cosine_loss(v, -v)) == pytest.approx(2.0)


def test_the_trainers_objective_is_the_soft_target_loss_the_paper_benchmark_calls() -> None:
    import torch

    from simtools.distill.config import Method
    from simtools.distill.losses import Objective, soft_target_loss

    g = torch.Generator().manual_seed(0)
    z_s, z_t = torch.randn(8, 4, generator=g), torch.randn(8, 4, generator=g)
    y = torch.tensor([0, 1, 2, 3, 0, 1, -1, -1])
    objective = Objective(frozenset({Method.SOFT}), temperature=3.0, alpha=0.7)
    total = sum(objective.terms(z_s, y, z_t=z_t).values())
    torch.testing.assert_close(total, soft_target_loss(z_s, z_t, y, temperature=3.0, alpha=0.7))
    labelled = y >= 0
    expected = 0.7 * soft_target_loss(z_s, z_t, None, temperature=3.0, alpha=1.0) + \
        0.3 * torch.nn.functional.cross_entropy(z_s[labelled], y[labelled])
    torch.testing.assert_close(total, expected)


def test_objective_terms_per_method() -> None:
    import pytest
    import torch

    from simtools.distill.config import Method
    from simtools.distill.losses import Objective

    z_s, z_t, v = torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 5)
    y = torch.tensor([0, 1, 2, -1])
    assert set(Objective(frozenset({Method.NONE})).terms(z_s, y)) == {"hard"}
    assert set(Objective(frozenset({Method.LOGITS})).terms(z_s, y, z_t=z_t)) == {"logits"}
    assert set(Objective(frozenset({Method.COMPRESSION})).terms(z_s, y, z_t=z_t)) == {"soft"}
    assert set(Objective(frozenset({Method.EMBEDDING})).terms(z_s, y, v_s=v, v_t=v)) == {
        "embedding", "hard"}
    with pytest.raises(ValueError, match="need the teacher's logits"):
        Objective(frozenset({Method.SOFT})).terms(z_s, y)
