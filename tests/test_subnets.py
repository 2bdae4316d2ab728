"""Subnets are given as a spec or a registered factory ``make(c_in, c_out)`` (FrEIA's
``subnet_constructor``), never as a Layer instance that every block would share;
either way a ``.keras`` round trip gives the same model."""
import keras
import numpy as np
import pytest
from helpers import randomize, to_np

from cinn import ConditionalINN
from cinn import blocks as B


@keras.saving.register_keras_serializable(package="cinn_tests")
def tanh_trunk(c_in, c_out):
    return keras.layers.Dense(c_in + c_out, activation="tanh")


@keras.saving.register_keras_serializable(package="cinn_tests")
class TwoLayerTrunk(keras.layers.Layer):
    def __init__(self, c_in, c_out, **kwargs):
        super().__init__(**kwargs)
        self.inner = keras.layers.Dense(8, activation="relu")
        self.outer = keras.layers.Dense(c_out)

    def call(self, h):
        return self.outer(self.inner(h))


def unregistered_trunk(c_in, c_out):
    return keras.layers.Dense(c_out)


def vector_flow(subnet, split=None):
    return ConditionalINN((4,), (2,), [{"blocks": 2, "subnet": subnet, "split": split},
                                       {"blocks": 1, "subnet": subnet}], seed=0)


def test_a_layer_instance_is_refused():
    shared = keras.layers.Dense(8)
    for make in (lambda: vector_flow(shared), lambda: B.AffineCoupling(shared),
                 lambda: B.AffineInjector(shared), lambda: B.Split(True, shared)):
        with pytest.raises(ValueError, match="must not be a Layer instance"):
            make()


def test_unregistered_factories_and_unknown_specs_are_refused():
    with pytest.raises(ValueError, match="not registered"):
        vector_flow(unregistered_trunk)
    with pytest.raises(ValueError, match="unknown subnet type"):
        vector_flow({"type": "mlp"})
    with pytest.raises(ValueError, match="unknown subnet factory"):
        vector_flow({"factory": "nowhere>nothing"})


def test_a_factory_builds_one_trunk_per_block():
    model = vector_flow(tanh_trunk)
    couplings = [layer for layer in model.flow_layers[0] if isinstance(layer, B.AffineCoupling)]
    trunks = [layer.params.trunk for layer in couplings]
    assert len(trunks) == 2 and trunks[0] is not trunks[1]
    # c_in = 2 kept channels + 2 condition channels, c_out = 2 log-scales + 2 shifts
    assert tuple(trunks[0].kernel.shape) == (4, 8)
    assert model.get_config()["levels"][0]["subnet"] == {"factory": "cinn_tests>tanh_trunk"}
    assert isinstance(vector_flow(TwoLayerTrunk).flow_layers[1][-1].params.trunk, TwoLayerTrunk)


@pytest.mark.parametrize("subnet", [{"type": "dense", "hidden": 8}, tanh_trunk, TwoLayerTrunk,
                                    keras.saving.serialize_keras_object(
                                        keras.layers.Dense(6, activation="relu"))],
                         ids=["spec", "function", "class", "serialized_layer"])
def test_save_and_load_give_the_same_log_prob(tmp_path, subnet):
    model = vector_flow(subnet, split="prior")
    randomize(model, 0.2, seed=1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 4)).astype("float32")
    c = rng.standard_normal((5, 2)).astype("float32")
    model.save(tmp_path / "flow.keras")
    loaded = keras.saving.load_model(tmp_path / "flow.keras", compile=False)
    assert len(loaded.weights) == len(model.weights)
    np.testing.assert_array_equal(to_np(loaded.log_prob(x, c)), to_np(model.log_prob(x, c)))
