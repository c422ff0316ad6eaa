"""InvCLRModel: the train step's losses, double backpropagation and that it learns."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from invcl_tf.data import draws
from invcl_tf.transforms import spirograph
from invcl_tf.losses import nt_xent
from invcl_tf.models import InvCLRModel, build_encoder, build_projection_head
from invcl_tf.penalty import gradient_penalty, rademacher

TRANSFORM = spirograph.SpirographTransform()


def _model(gp_weight, lr=0.05, clip=1000.0):
    encoder = build_encoder("resnet_tiny")
    model = InvCLRModel(encoder, build_projection_head(encoder.output_shape[-1]), TRANSFORM,
                        temperature=0.5, gp_weight=gp_weight, gp_clip=clip)
    model.compile(optimizer=keras.optimizers.SGD(lr, momentum=0.9))
    return model


def _batch(batch_size=16, num_extra=4, seed=0):
    targets = spirograph.sample_targets([seed, 1], batch_size)
    return draws.draw_views(TRANSFORM, targets, draws.fold(seed, 5), num_extra)


def test_losses_equal_their_definitions():
    model = _model(0.3)
    batch = _batch()
    losses = model.compute_losses(batch, training=False)
    h1 = model.represent(batch["x1"], batch["alpha1"], batch["aux1"])
    h2 = model.represent(batch["x2"], batch["alpha2"], batch["aux2"])
    expected_c = nt_xent(model.head(h1), model.head(h2), 0.5)
    signs = rademacher(batch["sign_seed"][0], h1.shape)
    expected_p, _ = gradient_penalty(
        lambda a: model.represent(batch["x1"], a, batch["aux1"]), batch["alpha1"],
        batch["alpha_extra"], 1000.0, True, signs)
    np.testing.assert_allclose(losses["contrastive_loss"], expected_c, rtol=1e-5)
    np.testing.assert_allclose(losses["penalty"], expected_p, rtol=1e-5)
    np.testing.assert_allclose(losses["loss"], expected_c + 0.3 * expected_p, rtol=1e-5)
    assert float(losses["penalty"]) > 0


def test_penalty_gradient_reaches_the_encoder_weights():
    model = _model(1.0)
    batch = _batch()
    with tf.GradientTape() as tape:
        penalty = model.compute_losses(batch)["penalty"]
    grads = tape.gradient(penalty, model.encoder.trainable_variables)
    kernels = [g for g, v in zip(grads, model.encoder.trainable_variables) if "kernel" in v.path]
    assert all(g is not None for g in kernels)
    assert all(np.isfinite(g.numpy()).all() for g in kernels)
    assert sum(float(tf.reduce_sum(tf.abs(g))) for g in kernels) > 0


def test_train_step_logs_and_skips_the_penalty_when_its_weight_is_zero():
    batch = _batch()
    del batch["alpha_extra"]  # λ = 0 needs no extra draws
    model = _model(0.0)
    logs = model.train_step(batch)
    assert set(logs) == {"loss", "contrastive_loss", "penalty", "learning_rate"}
    assert float(logs["penalty"]) == 0.0
    np.testing.assert_allclose(logs["loss"], logs["contrastive_loss"])
    np.testing.assert_allclose(logs["learning_rate"], 0.05)


@pytest.mark.parametrize("gp_weight", [0.0, 0.05])
def test_a_few_steps_on_one_batch_reduce_the_loss(gp_weight):
    model = _model(gp_weight)
    batch = _batch(num_extra=4)
    step = tf.function(model.train_step)
    first = float(step(batch)["loss"])
    for _ in range(15):
        step(batch)
    for metric in model.metrics:
        metric.reset_state()
    last = float(step(batch)["loss"])
    assert np.isfinite(last) and last < first


def test_a_strong_penalty_lowers_the_penalty():
    model = _model(1.0, lr=0.02)
    batch = _batch(num_extra=8)
    # The penalty as trained: batch statistics (the moving averages lag 20 steps behind).
    before = float(model.compute_losses(batch, training=True)["penalty"])
    step = tf.function(model.train_step)
    for _ in range(20):
        step(batch)
    after = float(model.compute_losses(batch, training=True)["penalty"])
    assert after < 0.5 * before


def test_clip_above_the_penalty_leaves_only_the_contrastive_gradient():
    batch = _batch()
    clipped = _model(1.0, clip=1e-9)
    plain = _model(0.0)
    plain.set_weights(clipped.get_weights())
    with tf.GradientTape(persistent=True) as tape:
        a = clipped.compute_losses(batch)["loss"] - 1e-9
        b = plain.compute_losses(batch)["loss"]
    for ga, gb in zip(tape.gradient(a, clipped.trainable_variables),
                      tape.gradient(b, plain.trainable_variables)):
        np.testing.assert_allclose(ga, gb, rtol=1e-4, atol=1e-6)
