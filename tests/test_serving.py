"""The inference SavedModel: endpoints, feature averaging, use without invcl_tf, fine-tuning."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from configs import spirograph_cpu
from invcl_tf import configuration, eval_protocol, pretraining, serving
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
                          configuration.to_json(config), str(root / "model"))
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


def test_tfsm_layer_fine_tunes_with_batch_norm_in_training_mode(exported):
    layer = keras.layers.TFSMLayer(exported["path"], call_endpoint="encode",
                                   call_training_endpoint="encode_training")
    images, _ = _images(6)
    np.testing.assert_allclose(layer(images), exported["model"].encoder(images), rtol=1e-5,
                               atol=1e-5)
    assert layer.trainable_weights
    with tf.GradientTape() as tape:
        out = layer(images, training=True)
        loss = tf.reduce_mean(tf.square(out))
    grads = tape.gradient(loss, layer.trainable_weights)
    assert any(g is not None and float(tf.reduce_sum(tf.abs(g))) > 0 for g in grads)
    assert not np.allclose(out, layer(images))  # batch statistics, not moving averages


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
