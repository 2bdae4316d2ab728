"""The training step as ``cinn train`` runs it: XLA-compiled on JAX (TensorFlow: on a
GPU only), the same numbers as the uncompiled step, and data made ahead of the step."""
import keras
import numpy as np
import pytest

from toy_flow import small_model, toy_data

from cinn.training import resolve_jit_compile, train


def test_auto_compiles_the_step_with_xla_on_jax_and_on_a_tensorflow_gpu():
    x, c = toy_data(32)
    model = small_model()
    train(model, (x, c), epochs=1, batch_size=16, verbose=0, tensorboard=False)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        # CPU: oneDNN's graph, 1.6-1.9x faster than XLA's step for the apps (README, Speed)
        assert model.jit_compile is bool(tf.config.list_logical_devices("GPU"))
    else:
        assert model.jit_compile is True
    assert resolve_jit_compile(False) is False and resolve_jit_compile(True) is True


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.distribute")
def test_auto_leaves_xla_off_under_a_tf_distribute_strategy():
    import tensorflow as tf

    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        assert resolve_jit_compile("auto") is False


def test_compiled_step_gives_the_same_loss_and_weights_as_the_plain_step():
    x, c = toy_data(32)
    results = []
    for jit in (False, True):
        keras.utils.set_random_seed(0)
        model = small_model()
        hist = train(model, (x, c), epochs=2, batch_size=16, verbose=0, tensorboard=False,
                     jit_compile=jit, seed=0)
        results.append((hist.history["loss"], [np.asarray(w) for w in model.get_weights()]))
    (loss_a, w_a), (loss_b, w_b) = results
    np.testing.assert_allclose(loss_a, loss_b, rtol=1e-4, atol=1e-4)
    for a, b in zip(w_a, w_b):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


def test_crop_batches_are_made_ahead_by_worker_threads_in_order():
    from cinn.apps.common.data import CropDataset

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (40, 50, 3), dtype=np.uint8) for _ in range(3)]
    ds = CropDataset(images, lambda crops, rng: (crops.astype("float32"),
                                                 crops[..., :1].astype("float32")),
                     crop=16, batch_size=2, steps=3, seed=1)
    assert ds.workers == 2 and not ds.use_multiprocessing
    again = CropDataset(images, lambda crops, rng: (crops.astype("float32"),
                                                    crops[..., :1].astype("float32")),
                        crop=16, batch_size=2, steps=3, seed=1, workers=1)
    for i in range(3):
        np.testing.assert_array_equal(ds[i][0][0], again[i][0][0])


# -- fit on a new model: ActNorm from the first batch ---------------------------------
def actnorm_values(model):
    return [np.asarray(keras.ops.convert_to_numpy(v)) for a in model.actnorm_layers()
            for v in (a.loc, a.log_scale)]


def test_fit_initialises_actnorm_from_the_first_batch():
    from cinn.training import ArrayDataset

    x, c = toy_data(32)
    keras.utils.set_random_seed(0)
    model, twin = small_model(), small_model()
    assert not model.is_initialized
    twin.initialize(x[:16], c[:16])                      # what the first batch gives
    model.compile(optimizer=keras.optimizers.Adam(0.0))  # weights stay where they start
    model.fit(ArrayDataset(x, c, batch_size=16, shuffle=False), epochs=1, verbose=0)
    assert model.is_initialized                          # not trained from the identity
    for got, want in zip(actnorm_values(model), actnorm_values(twin)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert np.abs(actnorm_values(model)[0]).max() > 1e-3


def test_fit_on_a_generator_of_a_new_model_asks_for_initialize():
    x, c = toy_data(32)
    model = small_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    batches = (((x[i:i + 16], c[i:i + 16]),) for i in (0, 16))
    with pytest.raises(ValueError, match=r"model\.initialize\(x, c\)") as err:
        model.fit(batches, epochs=1, steps_per_epoch=2, verbose=0)
    assert "\n" not in str(err.value)
    model.initialize(x[:16], c[:16])                     # then fit runs as Keras' does
    model.fit((((x[i:i + 16], c[i:i + 16]),) for i in (0, 16)), epochs=1, steps_per_epoch=2,
              verbose=0)
    assert model.is_initialized
