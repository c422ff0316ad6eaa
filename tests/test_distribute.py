"""Data parallelism and precision: two replicas compute what one device computes."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.repo_configs import spirograph_cpu
from invcl_tf import configuration, distribute, pretraining
from invcl_tf.data import draws, pipeline
from invcl_tf.transforms import spirograph

TRANSFORM = spirograph.SpirographTransform()


@pytest.fixture(scope="module")
def strategy():
    # One strategy per process: separate instances can reuse collective keys and collide.
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


def _config(**changes):
    config = spirograph_cpu.get_config("tiny")
    config.train.batch_size = 16
    config.gp.weight = 0.5
    config.model.sync_bn = True
    for key, value in changes.items():
        section, field = key.split("__")
        setattr(getattr(config, section), field, value)
    return config


def _one_step(model, batch):
    history = model.fit(tf.data.Dataset.from_tensors(batch), epochs=1, steps_per_epoch=1,
                        verbose=0, shuffle=False)
    return {k: v[-1] for k, v in history.history.items()}, model.get_weights()


def _batch(config, dtype=tf.float32):
    targets = spirograph.sample_targets([0, 3], config.train.batch_size)
    batch = draws.draw_views(TRANSFORM, targets, draws.fold(0, 9), config.gp.num_extra)
    return {k: tf.cast(v, dtype) if v.dtype.is_floating else v for k, v in batch.items()}


@pytest.mark.parametrize("precision,loss_rtol,weight_rtol", [
    # float64 shows the two computations are the same function. float32 is bounded by its own
    # rounding, which the penalty's second-order gradient at initialisation amplifies:
    # permuting the batch on one device moves the initial penalty by ~4e-4.
    ("float64", 1e-6, 1e-9), pytest.param("float32", 1e-4, 1e-2, marks=pytest.mark.slow)])
def test_two_mirrored_replicas_equal_one_device(strategy, precision, loss_rtol, weight_rtol):
    logs = _replicas_against_one_device(strategy, _config(), precision, loss_rtol, weight_rtol)
    assert logs["penalty"] > 0


def test_the_penalty_every_k_steps_is_refused_over_tensorflow_replicas(strategy):
    # tf.distribute cannot all-reduce inside the step's conditional on CPUs (nor on GPUs
    # without XLA): refused in one line, before anything trains.
    config = _config(gp__every_steps=3)
    with pytest.raises(configuration.ConfigError, match="gp.every_steps=3 runs on one"):
        configuration.check_replicas(config, 2)
    with strategy.scope():
        model = pretraining.build_model(config, TRANSFORM, steps_per_epoch=10)
    batch = _batch(config)
    batch["step"] = tf.fill([config.train.batch_size], tf.constant(3, tf.int64))
    with pytest.raises(ValueError, match="not over 2 tf.distribute replicas"):
        _one_step(model, batch)


def _replicas_against_one_device(strategy, config, precision, loss_rtol, weight_rtol, step=0):
    keras.mixed_precision.set_global_policy(precision)
    batch = _batch(config, tf.float64 if precision == "float64" else tf.float32)
    batch["step"] = tf.fill([config.train.batch_size], tf.constant(step, tf.int64))
    one = pretraining.build_model(config, TRANSFORM, steps_per_epoch=10)
    initial = one.get_weights()
    with strategy.scope():
        two = pretraining.build_model(config, TRANSFORM, steps_per_epoch=10)
    two.set_weights(initial)
    logs_one, weights_one = _one_step(one, batch)
    logs_two, weights_two = _one_step(two, batch)
    for key in ("loss", "contrastive_loss", "penalty"):  # Keras keeps metrics in float32
        np.testing.assert_allclose(logs_two[key], logs_one[key], rtol=loss_rtol)
    assert logs_one["contrastive_loss"] > 0
    changed = 0
    for w1, w2, w0 in zip(weights_one, weights_two, initial):
        np.testing.assert_allclose(w2, w1, rtol=weight_rtol,
                                   atol=weight_rtol * max(np.abs(w0).max(), np.abs(w1).max()))
        changed += not np.allclose(w1, w0)
    assert changed > len(initial) // 2  # the step really moved the weights
    return logs_one


@pytest.mark.slow
def test_per_replica_batch_norm_differs_from_one_device(strategy):
    """The check above can fail: without synchronised BN two replicas do not match."""
    keras.mixed_precision.set_global_policy("float64")
    config = _config(model__sync_bn=False)
    batch = _batch(config, tf.float64)
    one = pretraining.build_model(config, TRANSFORM, steps_per_epoch=10)
    with strategy.scope():
        two = pretraining.build_model(config, TRANSFORM, steps_per_epoch=10)
    two.set_weights(one.get_weights())
    logs_one, _ = _one_step(one, batch)
    logs_two, _ = _one_step(two, batch)
    assert abs(logs_two["loss"] - logs_one["loss"]) > 1e-6 * abs(logs_one["loss"])


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_runs_with_finite_float32_losses(precision):
    distribute.set_precision(precision)
    config = _config()
    model = pretraining.build_model(config, TRANSFORM, steps_per_epoch=10)
    assert model.encoder.layers[1].compute_dtype != "float32"
    ds = pipeline.train_dataset(spirograph.sample_targets([0, 4], 64), TRANSFORM, 16,
                                config.gp.num_extra, 0, 0, 1)
    history = model.fit(ds, epochs=1, steps_per_epoch=4, verbose=0, shuffle=False).history
    assert np.isfinite(history["loss"]).all() and np.isfinite(history["penalty"]).all()
    if precision == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert all(w.dtype == "float32" for w in model.encoder.trainable_weights)


def test_strategy_and_precision_names_are_checked():
    assert distribute.strategy_for("none") is tf.distribute.get_strategy()
    assert isinstance(distribute.strategy_for("mirrored"), tf.distribute.MirroredStrategy)
    with pytest.raises(ValueError, match="--config.distribute"):
        distribute.strategy_for("tpu")
    with pytest.raises(ValueError, match="--config.train.precision"):
        distribute.set_precision("float8")


@pytest.mark.slow
def test_two_mirrored_replicas_equal_one_device_on_a_folder_of_images(strategy, tmp_path):
    """The same check on a batch streamed from image files (crop, flip, colour jitter)."""
    from invcl_tf.data import sources
    from tests.test_images_end_to_end import _config as folder_config, spirograph_folder

    keras.mixed_precision.set_global_policy("float64")
    config = folder_config(spirograph_folder(tmp_path / "images"))
    config.gp.weight = 0.5
    data = sources.load(config)
    batch = next(iter(pipeline.train_dataset(data.train_x, data.transform, 16,
                                             config.gp.num_extra, 0, 0, 1)))
    batch = {k: tf.cast(v, tf.float64) if v.dtype.is_floating else v for k, v in batch.items()}
    one = pretraining.build_model(config, data.transform, steps_per_epoch=10)
    initial = one.get_weights()
    with strategy.scope():
        two = pretraining.build_model(config, data.transform, steps_per_epoch=10)
    two.set_weights(initial)
    logs_one, weights_one = _one_step(one, batch)
    logs_two, weights_two = _one_step(two, batch)
    np.testing.assert_allclose(logs_two["loss"], logs_one["loss"], rtol=1e-6)
    assert logs_one["penalty"] > 0
    for w1, w2, w0 in zip(weights_one, weights_two, initial):
        np.testing.assert_allclose(w2, w1, rtol=1e-9,
                                   atol=1e-9 * max(np.abs(w0).max(), np.abs(w1).max()))
