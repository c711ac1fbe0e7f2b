"""The MLX weighted LoRA stack: y = W·x + Σ wᵢ·sᵢ·Bᵢ·Aᵢ·x, per-request weights, fuse/unfuse."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.mlx
mx = pytest.importorskip("mlx.core")
nn = pytest.importorskip("mlx.nn")

from mochi_model.adapters import mlx_lora  # noqa: E402
from mochi_model.errors import AdapterMismatch  # noqa: E402

IN, OUT = 16, 12


def _pair(rng: np.random.Generator, r: int, scale: float) -> mlx_lora.MxPair:
    return mlx_lora.MxPair(mx.array(rng.normal(0, 0.3, (IN, r)).astype(np.float32)),
                           mx.array(rng.normal(0, 0.3, (r, OUT)).astype(np.float32)), scale)


@pytest.fixture
def setup():
    rng = np.random.default_rng(7)
    base = nn.Linear(IN, OUT, bias=True)
    layer = mlx_lora.StackedLoRALinear(base)
    p1, p2 = _pair(rng, 4, 2.0), _pair(rng, 2, 0.5)
    layer.add("team", p1, 0.3)
    layer.add("project", p2, 0.7)
    x = mx.array(rng.normal(0, 1, (3, 5, IN)).astype(np.float32))
    return base, layer, p1, p2, x


def _np(a) -> np.ndarray:
    return np.array(a.astype(mx.float32))


def test_stacked_layer_computes_the_weighted_sum_of_adapter_deltas(setup):
    base, layer, p1, p2, x = setup
    xn = _np(x)
    want = _np(base(x))
    for w, p in ((0.3, p1), (0.7, p2)):
        want = want + w * p.scale * (xn @ _np(p.a)) @ _np(p.b)
    np.testing.assert_allclose(_np(layer(x)), want, rtol=1e-5, atol=1e-5)


def test_fused_layer_gives_the_same_output_as_the_stack_and_unfuse_restores_it(setup):
    base, layer, _, _, x = setup
    stacked = _np(layer(x))
    layer.fuse()
    assert layer.fused
    np.testing.assert_allclose(_np(layer(x)), stacked, rtol=1e-5, atol=1e-5)
    layer.unfuse()
    assert not layer.fused
    np.testing.assert_array_equal(_np(layer(x)), stacked)
    # the base layer itself was never modified
    assert np.abs(_np(base(x)) - stacked).max() > 1e-3


def test_zero_weights_give_exactly_the_base_layer(setup):
    base, layer, _, _, x = setup
    layer.set_weights({"team": 0.0, "project": 0.0})
    np.testing.assert_array_equal(_np(layer(x)), _np(base(x)))


def test_changing_weights_between_requests_changes_the_output_and_drops_the_fused_copy(setup):
    base, layer, _, p2, x = setup
    layer.fuse()
    layer.set_weights({"team": 0.0})
    assert not layer.fused  # a fused copy of the old mix must never be served
    want = _np(base(x)) + 0.7 * p2.scale * (_np(x) @ _np(p2.a)) @ _np(p2.b)
    np.testing.assert_allclose(_np(layer(x)), want, rtol=1e-5, atol=1e-5)
    assert layer.weights == {"team": 0.0, "project": 0.7}


def test_an_adapter_with_other_shapes_is_refused_with_a_clear_error(setup):
    _, layer, _, _, _ = setup
    bad = mlx_lora.MxPair(mx.zeros((IN + 1, 2)), mx.zeros((2, OUT)), 1.0)
    with pytest.raises(AdapterMismatch, match="another base model"):
        layer.add("other", bad)


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = [nn.Linear(IN, IN), nn.Linear(IN, OUT)]

    def __call__(self, x):
        return self.layers[1](nn.relu(self.layers[0](x)))


def test_model_helpers_attach_fuse_and_detach_adapters_by_module_path():
    rng = np.random.default_rng(3)
    model = _Tiny()
    x = mx.array(rng.normal(0, 1, (2, IN)).astype(np.float32))
    base_out = _np(model(x))
    pair = _pair(rng, 3, 1.5)
    assert mlx_lora.attach_adapter(model, "p", {"layers.1": pair}, 1.0) == 1
    assert set(mlx_lora.stacked_layers(model)) == {"layers.1"}
    adapted = _np(model(x))
    assert np.abs(adapted - base_out).max() > 1e-3
    mlx_lora.fuse_model(model)
    assert mlx_lora.is_fused(model)
    np.testing.assert_allclose(_np(model(x)), adapted, rtol=1e-5, atol=1e-5)
    mlx_lora.set_stack_weights(model, {"p": 0.0})
    np.testing.assert_array_equal(_np(model(x)), base_out)
    mlx_lora.detach_adapter(model, "p")
    assert isinstance(model.layers[1], nn.Linear) and not mlx_lora.stacked_layers(model)
    # adapter state stays out of the parameter tree (nothing new to load or train)
    from mlx.utils import tree_flatten

    assert {k for k, _ in tree_flatten(model.parameters())} == {
        "layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"}


def test_attaching_to_a_layer_the_model_lacks_names_the_layer():
    model = _Tiny()
    with pytest.raises(AdapterMismatch, match="layers.7"):
        mlx_lora.attach_adapter(model, "p", {"layers.7": _pair(np.random.default_rng(0), 2, 1.0)})


def test_a_quantized_base_layer_takes_adapters_and_fuses_to_its_dequantized_weights():
    rng = np.random.default_rng(5)
    dense = nn.Linear(64, 32, bias=False)
    quant = nn.QuantizedLinear.from_linear(dense, group_size=32, bits=4)
    layer = mlx_lora.StackedLoRALinear(quant)
    assert (layer.in_dims, layer.out_dims) == (64, 32)
    pair = mlx_lora.MxPair(mx.array(rng.normal(0, 0.3, (64, 2)).astype(np.float32)),
                           mx.array(rng.normal(0, 0.3, (2, 32)).astype(np.float32)), 2.0)
    layer.add("p", pair, 0.5)
    x = mx.array(rng.normal(0, 1, (4, 64)).astype(np.float32))
    stacked = _np(layer(x))
    want = _np(quant(x)) + 0.5 * 2.0 * (_np(x) @ _np(pair.a)) @ _np(pair.b)
    np.testing.assert_allclose(stacked, want, rtol=1e-4, atol=1e-4)
    layer.fuse()
    np.testing.assert_allclose(_np(layer(x)), stacked, rtol=1e-3, atol=1e-3)
