"""LARS and the warm-up/cosine schedule against direct NumPy evaluations of their formulas."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from invcl_tf.optim.lars import LARS
from invcl_tf.optim.schedules import WarmupCosine, peak_learning_rate

SHAPES = [(), (5,), (3, 4), (2, 3, 2, 2)]
# Larger than the defaults so that the coupled decay and the trust ratio visibly move the
# result at a 1e-6 tolerance (wd = 1e-6 would be lost in float32 round-off).
HPARAMS = dict(momentum=0.9, lars_weight_decay=0.05, trust_coefficient=0.02, eps=1e-8)
RTOL = 1e-6


class _StepwiseLR(keras.optimizers.schedules.LearningRateSchedule):
    """The i-th optimiser step uses ``values[i]``."""

    def __init__(self, values):
        self.values = tf.constant(values, tf.float32)

    def __call__(self, step):
        return tf.gather(self.values, step)


def _reference_lars(ws, grads_per_step, lrs, momentum, lars_weight_decay, trust_coefficient,
                    eps):
    """torchlars LARS + torch.optim.SGD momentum in float64; returns (weights, buffers)."""
    ws = [np.asarray(w, np.float64) for w in ws]
    bufs = [np.zeros_like(w) for w in ws]
    for grads, lr in zip(grads_per_step, lrs):
        for i, g in enumerate(grads):
            g = np.asarray(g, np.float64)
            w_norm, g_norm = np.linalg.norm(ws[i]), np.linalg.norm(g)
            if w_norm > 0 and g_norm > 0:
                r = trust_coefficient * w_norm / (g_norm + lars_weight_decay * w_norm + eps)
            else:
                r = 1.0
            bufs[i] = momentum * bufs[i] + (g + lars_weight_decay * ws[i]) * r
            ws[i] = ws[i] - lr * bufs[i]
    return ws, bufs


def _random(shapes, rng):
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


def _run_lars(opt, variables, grads_per_step, mode):
    def step(grads):
        opt.apply_gradients(zip(grads, variables))

    if mode != "eager":
        step = tf.function(step, jit_compile=(mode == "jit"))
    for grads in grads_per_step:
        step([tf.constant(g) for g in grads])


def _assert_close(actual, desired):
    # Relative to the array's scale: single entries such as g + wd·w or w − lr·buf can cancel
    # to near zero, where float32 cannot reach 1e-6 of the entry itself.
    desired = np.asarray(desired)
    np.testing.assert_allclose(actual, desired, rtol=RTOL, atol=RTOL * np.max(np.abs(desired)))


def _assert_matches(opt, variables, ref_ws, ref_bufs):
    for v, m, w_ref, m_ref in zip(variables, opt.momentums, ref_ws, ref_bufs):
        _assert_close(m.numpy(), m_ref)
        _assert_close(v.numpy(), w_ref)


def test_lars_one_step_matches_numpy():
    rng = np.random.default_rng(0)
    w0, grads = _random(SHAPES, rng), [_random(SHAPES, rng)]
    variables = [tf.Variable(w) for w in w0]
    opt = LARS(learning_rate=1.5, **HPARAMS)
    _run_lars(opt, variables, grads, "eager")
    _assert_matches(opt, variables, *_reference_lars(w0, grads, [1.5], **HPARAMS))


@pytest.mark.parametrize("mode", ["eager", "function", "jit"])
def test_lars_three_steps_with_changing_lr_match_pytorch_momentum(mode):
    rng = np.random.default_rng(1)
    w0 = _random(SHAPES, rng)
    grads = [_random(SHAPES, rng) for _ in range(3)]
    lrs = [2.0, 0.5, 4.0]
    variables = [tf.Variable(w) for w in w0]
    opt = LARS(learning_rate=_StepwiseLR(lrs), **HPARAMS)
    _run_lars(opt, variables, grads, mode)
    _assert_matches(opt, variables, *_reference_lars(w0, grads, lrs, **HPARAMS))


def test_lars_default_hyperparameters_match_numpy():
    rng = np.random.default_rng(2)
    w0, grads = _random(SHAPES, rng), [_random(SHAPES, rng) for _ in range(2)]
    variables = [tf.Variable(w) for w in w0]
    opt = LARS(learning_rate=3.0)
    _run_lars(opt, variables, grads, "eager")
    defaults = dict(momentum=0.9, lars_weight_decay=1e-6, trust_coefficient=1e-3, eps=1e-8)
    _assert_matches(opt, variables, *_reference_lars(w0, grads, [3.0, 3.0], **defaults))


def test_lars_trust_ratio_is_one_for_zero_weight_or_zero_gradient():
    rng = np.random.default_rng(3)
    w_nonzero, g_nonzero = rng.standard_normal((2, 6)).astype(np.float32)
    w0 = [np.zeros(6, np.float32), w_nonzero]
    grads = [g_nonzero, np.zeros(6, np.float32)]
    variables = [tf.Variable(w) for w in w0]
    lr, wd = 0.7, HPARAMS["lars_weight_decay"]
    opt = LARS(learning_rate=lr, **HPARAMS)
    _run_lars(opt, variables, [grads], "eager")
    # Unscaled by the trust ratio: buf = g + wd·w.
    np.testing.assert_allclose(opt.momentums[0].numpy(), g_nonzero, rtol=RTOL)
    np.testing.assert_allclose(variables[0].numpy(), -lr * g_nonzero, rtol=RTOL)
    np.testing.assert_allclose(opt.momentums[1].numpy(), wd * w_nonzero, rtol=RTOL)
    np.testing.assert_allclose(variables[1].numpy(), (1 - lr * wd) * w_nonzero, rtol=RTOL)
    _assert_matches(opt, variables, *_reference_lars(w0, [grads], [lr], **HPARAMS))


def test_lars_momentum_restored_from_checkpoint(tmp_path):
    rng = np.random.default_rng(4)
    w0 = _random(SHAPES, rng)
    grads = [_random(SHAPES, rng) for _ in range(3)]
    variables = [tf.Variable(w) for w in w0]
    opt = LARS(learning_rate=0.5, **HPARAMS)
    _run_lars(opt, variables, grads[:2], "eager")
    path = tf.train.Checkpoint(optimizer=opt, variables=variables).write(str(tmp_path / "ckpt"))

    restored_vars = [tf.Variable(tf.zeros_like(w)) for w in w0]
    restored = LARS(learning_rate=0.5, **HPARAMS)
    restored.build(restored_vars)
    tf.train.Checkpoint(optimizer=restored, variables=restored_vars).read(
        path).assert_consumed()
    assert int(restored.iterations) == 2
    for m, m_restored in zip(opt.momentums, restored.momentums):
        assert np.any(m.numpy() != 0)
        np.testing.assert_array_equal(m_restored.numpy(), m.numpy())

    # Continuing from the checkpoint is indistinguishable from never having stopped.
    _run_lars(opt, variables, grads[2:], "eager")
    _run_lars(restored, restored_vars, grads[2:], "eager")
    for v, v_restored in zip(variables, restored_vars):
        np.testing.assert_array_equal(v_restored.numpy(), v.numpy())


def test_lars_config_round_trip():
    schedule = WarmupCosine(peak_lr=3.0, epochs=20, steps_per_epoch=5, warmup_epochs=4)
    opt = LARS(learning_rate=schedule, momentum=0.8, lars_weight_decay=1e-4,
               trust_coefficient=2e-3, eps=1e-7, clipnorm=1.0, name="lars_test")
    config = opt.get_config()
    assert config["momentum"] == 0.8
    assert config["lars_weight_decay"] == 1e-4
    assert config["trust_coefficient"] == 2e-3
    assert config["eps"] == 1e-7
    assert config["weight_decay"] is None

    # from_config replaces config["learning_rate"] by the schedule object in place.
    clone = LARS.from_config(dict(config))
    assert clone.get_config() == config
    revived = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert type(revived) is LARS
    assert revived.get_config() == config
    assert isinstance(revived._learning_rate, WarmupCosine)


def test_lars_keeps_base_weight_decay_off():
    assert LARS().weight_decay is None
    assert LARS().lars_weight_decay == 1e-6
    with pytest.raises(ValueError, match="lars_weight_decay"):
        LARS(weight_decay=1e-4)


def _reference_schedule(steps, peak_lr, epochs, steps_per_epoch, warmup_epochs):
    e = np.floor_divide(steps, steps_per_epoch).astype(np.float64)
    return np.minimum(peak_lr * (1 + np.cos(np.pi * e / epochs)) / 2,
                      peak_lr * (1 + e) / warmup_epochs)


def test_warmup_cosine_matches_formula_at_every_step():
    peak, epochs, spe = 3.0, 50, 7
    schedule = WarmupCosine(peak, epochs, spe)
    steps = np.arange(epochs * spe)
    lrs = keras.ops.convert_to_numpy(schedule(tf.constant(steps)))
    assert lrs.dtype == np.float32
    np.testing.assert_allclose(lrs, _reference_schedule(steps, peak, epochs, spe, 10),
                               rtol=RTOL)

    per_epoch = lrs.reshape(epochs, spe)
    np.testing.assert_array_equal(per_epoch, np.repeat(per_epoch[:, :1], spe, axis=1))
    np.testing.assert_allclose(per_epoch[0, 0], 0.1 * peak, rtol=RTOL)
    # Linear warm-up for the first epochs, the maximum around epoch W, then monotone decay.
    np.testing.assert_allclose(per_epoch[:9, 0], peak * np.arange(1, 10) / 10, rtol=RTOL)
    assert np.argmax(per_epoch[:, 0]) == 9
    assert np.all(np.diff(per_epoch[9:, 0]) < 0)
    np.testing.assert_allclose(per_epoch[-1, 0],
                               peak * (1 + math.cos(math.pi * (epochs - 1) / epochs)) / 2,
                               rtol=RTOL)


def test_warmup_cosine_in_graph_mode_with_tensor_step():
    schedule = WarmupCosine(peak_lr=1.2, epochs=30, steps_per_epoch=11, warmup_epochs=5)
    graph_lr = tf.function(schedule)
    for step in [0, 10, 11, 54, 55, 200, 329]:
        lr = graph_lr(tf.constant(step, tf.int64))
        assert lr.dtype == tf.float32
        np.testing.assert_allclose(lr.numpy(),
                                   _reference_schedule(step, 1.2, 30, 11, 5), rtol=RTOL)


def test_warmup_cosine_config_round_trip():
    schedule = WarmupCosine(peak_lr=3.0, epochs=500, steps_per_epoch=97, warmup_epochs=10)
    revived = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(schedule))
    assert isinstance(revived, WarmupCosine)
    assert revived.get_config() == schedule.get_config()


def test_peak_learning_rate():
    assert peak_learning_rate(1.5, 512) == 3.0
    assert peak_learning_rate(1.5, 256) == 1.5
