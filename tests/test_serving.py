"""The inference SavedModel: endpoints, feature averaging, use without invcl_tf, fine-tuning."""

import json
import os
import subprocess
import sys
import textwrap
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.repo_configs import spirograph_cpu
from invcl_tf import eval_protocol, pretraining, serving, stored_configs
from invcl_tf.data import sources
from invcl_tf.transforms import spirograph

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    config = spirograph_cpu.get_config("tiny")
    config.eval.every_epochs = 0
    model = pretraining.train(config, str(root / "run"), verbose=0)
    transform, shape = sources.transform_for(config)
    path = serving.export(model.encoder, model.head, transform, shape,
                          stored_configs.to_json(config), str(root / "model"))
    return {"model": model, "config": config, "transform": transform, "path": path,
            "root": root}


def _images(n=5):
    targets = spirograph.sample_targets([1, 2], n)
    return spirograph.render(targets, spirograph.sample_nuisance([1, 3], [n])).numpy(), targets


def test_loads_without_invcl_tf_and_matches_the_in_memory_model(exported):
    images, targets = _images()
    root = exported["root"]
    np.save(root / "images.npy", images)
    np.save(root / "targets.npy", targets.numpy())
    script = textwrap.dedent(f"""
        import sys, numpy as np, tensorflow as tf
        m = tf.saved_model.load({exported['path']!r})
        images = np.load({str(root / 'images.npy')!r}); targets = np.load({str(root / 'targets.npy')!r})
        np.save({str(root / 'h.npy')!r}, m.signatures["serving_default"](images=images)["output_0"].numpy())
        np.save({str(root / 'avg.npy')!r}, m.encode_averaged(targets, 3, 7).numpy())
        np.save({str(root / 'z.npy')!r}, m.project(m.encode(images)).numpy())
        assert "invcl_tf" not in sys.modules, "the SavedModel pulled in invcl_tf"
        print(m.config().numpy().decode())
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=str(root), env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)["model"]["arch"] == "resnet_tiny"
    encoder = exported["model"].encoder
    np.testing.assert_allclose(np.load(root / "h.npy"), encoder(images), rtol=1e-5, atol=1e-5)
    expected = serving.averaged_representation(encoder, exported["transform"], targets, 3, 7)
    np.testing.assert_allclose(np.load(root / "avg.npy"), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.load(root / "z.npy"),
                               exported["model"].head(encoder(images)), rtol=1e-5, atol=1e-5)


def test_averaging_over_more_samples_lowers_the_variance_across_seeds(exported):
    module = tf.saved_model.load(exported["path"])
    _, targets = _images(8)

    def spread(n):
        draws = np.stack([module.encode_averaged(targets, n, s).numpy() for s in range(6)])
        return draws.var(axis=0).mean()

    np.testing.assert_allclose(module.encode_averaged(targets, 4, 3),
                               module.encode_averaged(targets, 4, 3))
    assert spread(8) < 0.5 * spread(1)


def test_bad_input_fails_with_a_message(exported):
    module = tf.saved_model.load(exported["path"])
    _, targets = _images()
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_samples must be >= 1"):
        module.encode_averaged(targets, 0, 1)
    with pytest.raises((ValueError, TypeError)):
        module.encode(np.zeros((2, 32, 32), np.float32))
    with pytest.raises((ValueError, TypeError)):
        module.encode_averaged(np.zeros((2, 5), np.float32), 2, 1)


# Optimizers that keep per-weight state (slots); plain SGD keeps none.
STATEFUL_OPTIMIZERS = {"adam": lambda: keras.optimizers.Adam(1e-3),
                       "sgd_momentum": lambda: keras.optimizers.SGD(0.05, momentum=0.9)}


def _fit(encoder, optimizer):
    """Two ``fit`` steps of ``encoder`` + a Dense(4) head regressing the targets, as in README."""
    images, targets = _images(16)
    model = keras.Sequential([keras.Input((32, 32, 3)), encoder, keras.layers.Dense(4)])
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(images, targets.numpy(), batch_size=8, epochs=1, shuffle=False, verbose=0)
    return model


def _changed(weights, before):
    return {w.path for w, b in zip(weights, before) if not np.array_equal(w.numpy(), b)}


@pytest.mark.parametrize("optimizer", sorted(STATEFUL_OPTIMIZERS))
def test_plain_tfsm_layer_cannot_fit_with_optimizer_state_as_the_readme_says(exported,
                                                                            optimizer):
    # Keras 3.15: TFSMLayer keeps the ":0" of the restored variables' names and the
    # optimizer's slot names inherit it. If this fails, Keras has fixed that: update README.
    layer = keras.layers.TFSMLayer(exported["path"], call_endpoint="encode",
                                   call_training_endpoint="encode_training")
    with pytest.raises(ValueError, match=r"'stem_conv_kernel:0_momentum' is not a valid scope"):
        _fit(layer, STATEFUL_OPTIMIZERS[optimizer]())


@pytest.mark.parametrize("optimizer", sorted(STATEFUL_OPTIMIZERS))
def test_fine_tunable_layer_fits_and_updates_batch_norm_statistics(exported, optimizer):
    layer = serving.FineTunableTFSMLayer(exported["path"])
    images, _ = _images(6)
    h_before = layer(images).numpy()
    np.testing.assert_allclose(h_before, exported["model"].encoder(images), rtol=1e-5, atol=1e-5)
    assert not np.allclose(layer(images, training=True), h_before)  # batch statistics
    statistics = layer.non_trainable_weights
    assert statistics and all("moving_" in w.path for w in statistics)
    trainable_before = [w.numpy() for w in layer.trainable_weights]
    statistics_before = [w.numpy() for w in statistics]

    _fit(layer, STATEFUL_OPTIMIZERS[optimizer]())

    assert _changed(layer.trainable_weights, trainable_before) == {
        w.path for w in layer.trainable_weights}
    # fit calls encode_training, whose batch norm updates the export's moving averages.
    assert _changed(statistics, statistics_before) == {w.path for w in statistics}
    assert not np.allclose(layer(images), h_before, atol=1e-4)  # the endpoints see the update


def test_frozen_fine_tunable_layer_keeps_weights_and_batch_norm_statistics(exported):
    layer = serving.FineTunableTFSMLayer(exported["path"], trainable=False)
    before = [w.numpy() for w in layer.weights]
    model = _fit(layer, STATEFUL_OPTIMIZERS["adam"]())
    assert not _changed(layer.weights, before)
    assert len(model.trainable_weights) == 2  # the head's kernel and bias


def test_keras_encoder_fine_tunes_with_plain_keras(exported):
    path = str(exported["root"] / "run" / "encoder.keras")
    with zipfile.ZipFile(path) as archive:  # nothing of ours needed to load it
        assert "invcl_tf" not in archive.read("config.json").decode()
    encoder = keras.saving.load_model(path)
    before = [w.numpy() for w in encoder.weights]
    _fit(encoder, STATEFUL_OPTIMIZERS["sgd_momentum"]())
    assert _changed(encoder.weights, before) == {w.path for w in encoder.weights}


def test_evaluating_the_saved_model_matches_the_checkpoint(exported):
    config = exported["config"]
    data = sources.load(config)
    from_model = eval_protocol.evaluate(exported["model"].encoder, data, config)
    from_export = eval_protocol.evaluate(serving.SavedEncoder(exported["path"]), data, config)
    for m, value in from_model["mse"].items():
        assert from_export["mse"][m] == pytest.approx(value, rel=1e-5)
    assert from_export["conditional_variance"] == pytest.approx(
        from_model["conditional_variance"], rel=1e-4)
    assert from_export["penalty_estimate"] == pytest.approx(from_model["penalty_estimate"],
                                                            rel=1e-4)


def test_bfloat16_evaluation_rounds_the_encoder_and_nothing_else(exported):
    config = stored_configs.with_overrides(exported["config"],
                                          {"eval.num_passes": (1, 10)})
    data = sources.load(config)
    encoder = exported["model"].encoder
    exact = eval_protocol.evaluate(encoder, data, config)
    config.eval.precision = "mixed_bfloat16"
    rounded = eval_protocol.evaluate(encoder, data, config)
    assert rounded["eval_precision"] == "mixed_bfloat16" != exact["eval_precision"]
    # bf16 keeps 8 bits of mantissa: scores move by a few per cent at most, and do move.
    for m, value in exact["mse"].items():
        assert rounded["mse"][m] == pytest.approx(value, rel=0.05)
        assert rounded["mse"][m] != value
    assert rounded["conditional_variance"] == pytest.approx(exact["conditional_variance"],
                                                            rel=0.05)
    assert rounded["penalty_estimate"] == exact["penalty_estimate"]  # float32 gradients
    x = np.random.default_rng(0).uniform(size=(8, 32, 32, 3)).astype("float32")
    copy = eval_protocol.inference_encoder(encoder, config.eval.precision)
    assert {layer.compute_dtype for layer in copy.layers[1:]} == {"bfloat16"}
    for a, b in zip(copy.weights, encoder.weights):  # mixed: float32 variables, same values
        assert a.dtype == "float32"
        np.testing.assert_array_equal(a, b)
    h, exact_h = np.asarray(copy(x, training=False), "float32"), encoder(x, training=False)
    assert 1e-4 < np.abs(h - exact_h).max() / np.abs(exact_h).max() < 0.05
    with pytest.raises(eval_protocol.errors.InputError, match="eval.precision"):
        eval_protocol.evaluate(serving.SavedEncoder(exported["path"]), data, config)


def test_loading_an_export_prints_no_warning_per_batch_norm_layer(exported, caplog):
    with caplog.at_level("WARNING"):
        tf.saved_model.load(exported["path"])  # TF's own load: one warning per BN layer
    assert sum("unsaved custom gradients" in r.getMessage() for r in caplog.records) > 10
    caplog.clear()
    with caplog.at_level("WARNING"):
        serving.SavedEncoder(exported["path"])
        serving.FineTunableTFSMLayer(exported["path"])
    assert not [r for r in caplog.records if "unsaved custom gradients" in r.getMessage()]
