"""``gp.every_steps = k``: the penalty on the steps whose global index is a multiple of k, with
weight k·λ, plain contrastive steps between, in one compiled step; resumed mid-cycle, a run
ends where the uninterrupted one does."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from invcl_tf import pretraining
from invcl_tf.data import pipeline, sources
from invcl_tf.models import InvCLRModel
from tests.interrupts import StopAtStep
from tests.repo_configs import spirograph_cpu

pytestmark = pytest.mark.slow


def _config(**overrides):
    config = spirograph_cpu.get_config("tiny")  # 8 steps an epoch
    config.eval.every_epochs = 0
    for dotted, value in overrides.items():
        section, field = dotted.split("__")
        setattr(getattr(config, section), field, value)
    return config


def _models(config, settings):
    """Models with the same initial weights, one per ``(every_steps, weight)``."""
    made = []
    for every_steps, weight in settings:
        config.gp.every_steps, config.gp.weight = every_steps, weight
        made.append(pretraining.build_model(config, sources.transform_for(config)[0],
                                            steps_per_epoch=8))
        made[-1].set_weights(made[0].get_weights())
    return made


def _batch(config, step):
    data = sources.load(config)
    batch = next(iter(pipeline.train_dataset(data.train_x, data.transform, 32,
                                             config.gp.num_extra, config.seed, 0, 1)))
    batch["step"] = tf.fill([32], tf.constant(step, tf.int64))
    return batch


def _step(model, batch):
    losses, grads = model.losses_and_gradients(batch)
    return ({k: float(v) for k, v in losses.items()}, [np.asarray(g) for g in grads],
            [np.asarray(v) for v in model.non_trainable_variables])


def _close(a, b, rtol):
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=rtol * max(np.abs(y).max(), 1e-12))


def test_a_carrying_step_is_the_penalty_at_k_times_lambda_and_the_others_plain():
    config = _config()
    lazy, every, plain = _models(config, [(4, 0.01), (1, 0.04), (1, 0.0)])
    start = lazy.get_weights()
    batch = _batch(config, step=8)
    got, want = _step(lazy, batch), _step(every, batch)
    assert got[0]["carried"] == 1.0 and got[0]["penalty"] > 0
    for key in ("loss", "contrastive_loss", "penalty"):
        np.testing.assert_allclose(got[0][key], want[0][key], rtol=1e-6)
    _close(got[1], want[1], 1e-5)  # gradients
    _close(got[2], want[2], 1e-6)  # batch norm's moving statistics
    lazy.set_weights(start)  # before this step's batch-norm update
    batch = _batch(config, step=9)
    got, want = _step(lazy, batch), _step(plain, batch)
    assert got[0]["carried"] == 0.0 and got[0]["penalty"] == 0.0
    np.testing.assert_allclose(got[0]["loss"], want[0]["loss"], rtol=1e-6)
    _close(got[1], want[1], 1e-5)
    _close(got[2], want[2], 1e-6)


def test_fit_compiles_one_step_and_logs_which_steps_carried_the_penalty(tmp_path, monkeypatch):
    traced = []
    original = InvCLRModel.compute_losses

    def counting(self, batch, training=True):
        traced.append(self.gp_every_steps)
        return original(self, batch, training)

    monkeypatch.setattr(InvCLRModel, "compute_losses", counting)
    every = pretraining.train(_config(train__epochs=3, train__steps_per_execution=2),
                              str(tmp_path / "every"), verbose=0)
    lazy = pretraining.train(_config(train__epochs=3, train__steps_per_execution=2,
                                     gp__every_steps=3), str(tmp_path / "lazy"), verbose=0)
    assert traced.count(3) == traced.count(1) > 0  # no retracing for the conditional
    # Global steps 0, 3, 6 | 9, 12, 15 | 18, 21 of 8 an epoch: the index runs across epochs.
    assert lazy.history.history["penalty_steps"] == [3 / 8, 3 / 8, 2 / 8]
    assert "penalty_steps" not in every.history.history
    assert min(lazy.history.history["penalty"]) > 0  # averaged over the carrying steps


def test_a_run_resumed_mid_cycle_ends_where_the_whole_run_does(tmp_path):
    config = _config(train__epochs=2, train__checkpoint_every_steps=5, gp__every_steps=3)
    full = pretraining.train(config, str(tmp_path / "full"), verbose=0)
    with pytest.raises(KeyboardInterrupt):
        pretraining.train(config, str(tmp_path / "resumed"), verbose=0,
                          extra_callbacks=[StopAtStep(7)])  # saved at step 5, mid-cycle
    resumed = pretraining.train(config, str(tmp_path / "resumed"), verbose=0)
    # Equal bit for bit on this CPU; held to the project's resume tolerance (other CPUs'
    # kernels may round a resumed call differently). A cycle off by one step would move the
    # weights by orders more: its penalty steps carry weight k·λ.
    for a, b in zip(full.get_weights() + [np.asarray(v) for v in full.optimizer.variables],
                    resumed.get_weights() + [np.asarray(v) for v in resumed.optimizer.variables]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_every_steps_is_checked():
    with pytest.raises(ValueError, match="gp_every_steps must be at least 1"):
        InvCLRModel(keras.Sequential(), keras.Sequential(), None, gp_every_steps=0)
