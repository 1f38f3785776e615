"""Per-layer gradient norms and the sigmoid-versus-ReLU vanishing-gradient experiment."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from simtools.distill.diagnostics import (  # noqa: E402
    GradientResult,
    layer_grad_norms,
    plot_gradients,
    vanishing_gradients,
)


def test_layer_grad_norms_matches_a_hand_computed_norm() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    model(torch.randn(5, 4)).pow(2).sum().backward()
    norms = layer_grad_norms(model)
    assert list(norms) == ["0", "2"]  # the ReLU owns no parameters
    first = model[0]
    expected = math.sqrt(float(first.weight.grad.pow(2).sum() + first.bias.grad.pow(2).sum()))
    assert norms["0"] == pytest.approx(expected, rel=1e-6)
    assert all(v > 0 for v in norms.values())


def test_layer_grad_norms_before_backward_and_sparse_and_root() -> None:
    model = torch.nn.Sequential(torch.nn.Embedding(10, 3, sparse=True), torch.nn.Linear(3, 2))
    assert layer_grad_norms(model) == {"0": 0.0, "1": 0.0}
    model(torch.tensor([1, 2])).sum().backward()
    norms = layer_grad_norms(model)
    assert norms["0"] > 0 and norms["1"] > 0
    linear = torch.nn.Linear(2, 2)
    assert list(layer_grad_norms(linear)) == ["<root>"]


def test_layer_grad_norms_rejects_non_modules() -> None:
    with pytest.raises(TypeError, match="torch.nn.Module"):
        layer_grad_norms([1, 2])  # type: ignore[arg-type]


def test_sigmoid_gradients_vanish_and_relu_gradients_do_not() -> None:
    result = vanishing_gradients(depth=10, width=64, seed=0, steps=5)
    assert isinstance(result, GradientResult)
    assert result.steps == [0, 5]
    sigmoid0, relu0 = result.norms["sigmoid"][0][0], result.norms["relu"][0][0]
    # Measured: ~3e-5 against ~0.76 (a factor ~25,000); 100x leaves a wide margin.
    assert sigmoid0 * 100 < relu0
    assert result.ratio_first_last("sigmoid") < 1e-3
    assert result.ratio_first_last("relu") > 0.1
    rows = result.table()
    assert len(rows) == 10 and set(rows[0]) == {"layer", "sigmoid", "relu"}


def test_same_seed_same_norms() -> None:
    a = vanishing_gradients(depth=4, width=8, activations=("tanh",), steps=2, seed=3)
    b = vanishing_gradients(depth=4, width=8, activations=("tanh",), steps=2, seed=3)
    assert a.norms == b.norms


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"depth": 1}, ValueError, "depth must be at least 2"),
    ({"width": 2.5}, TypeError, "width must be an integer"),
    ({"activations": ("swish",)}, ValueError, "unknown activation 'swish'; valid values"),
    ({"activations": ()}, ValueError, "activations is empty"),
    ({"init": "xavier"}, ValueError, "unknown init 'xavier'"),
])
def test_vanishing_gradients_validates(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        vanishing_gradients(**{"steps": 0, **kwargs})


def test_table_rejects_an_unrecorded_step() -> None:
    result = vanishing_gradients(depth=3, width=4, steps=1)
    with pytest.raises(ValueError, match="step 7 was not recorded"):
        result.table(7)


def test_plot_gradients_writes_a_png(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    result = vanishing_gradients(depth=3, width=4, steps=1)
    path = plot_gradients(result, tmp_path / "sub" / "grads.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="must end in .png"):
        plot_gradients(result, tmp_path / "grads.jpg")
