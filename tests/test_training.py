"""Training library: resume equivalence, checkpoints, and errors that name the fix."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.interrupts import StopAfterEpoch, StopAtStep
from tests.repo_configs import spirograph_cpu
from invcl_tf import configuration, pretraining, workdir


def _config(**overrides):
    config = spirograph_cpu.get_config("tiny")
    config.eval.every_epochs = 0
    for dotted, value in overrides.items():
        *section, field = dotted.split("__")
        setattr(getattr(config, section[0]) if section else config, field, value)
    return config


def _weights(model):
    return [np.asarray(w) for w in model.encoder.weights + model.head.weights]


def test_resumed_run_ends_with_the_weights_of_an_uninterrupted_run(tmp_path, capsys):
    config = _config(train__epochs=3)
    full = pretraining.train(config, str(tmp_path / "full"), verbose=0)
    with pytest.raises(KeyboardInterrupt):
        pretraining.train(config, str(tmp_path / "resumed"), verbose=0,
                       extra_callbacks=[StopAfterEpoch(2)])
    checkpoints = tmp_path / "resumed" / workdir.CHECKPOINT_DIR
    # Checkpoints are numbered by global step: 8 steps an epoch.
    assert (checkpoints / "ckpt-16.index").exists() and not (checkpoints / "ckpt-24.index").exists()
    capsys.readouterr()
    resumed = pretraining.train(config, str(tmp_path / "resumed"), verbose=0)
    assert f"resuming {tmp_path / 'resumed'} after 16 steps: epoch 3 of 3, step 0 of 8" in \
        capsys.readouterr().out
    assert int(resumed.optimizer.iterations) == int(full.optimizer.iterations) == 3 * 8
    for a, b in zip(_weights(full), _weights(resumed)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert os.path.exists(tmp_path / "resumed" / workdir.ENCODER_FILE)


def test_outputs_of_a_run(tmp_path):
    model = pretraining.train(_config(eval__every_epochs=1), str(tmp_path), verbose=0)
    history = model.history.history
    assert len(history["monitor_probe_mse"]) == 2 and len(history["penalty"]) == 2
    assert 0 < history["monitor_conditional_variance"][-1] < 2
    stored = json.loads((tmp_path / workdir.CONFIG_FILE).read_text())
    assert stored["gp"]["weight"] == 0.01 and stored["model"]["arch"] == "resnet_tiny"
    assert list((tmp_path / workdir.TENSORBOARD_DIR).rglob("events.out.tfevents*"))
    loaded = workdir.load_encoder(str(tmp_path))
    x = np.random.default_rng(0).uniform(size=(4, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(loaded(x), model.encoder(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("every,found", [(1, r"at step 9 \(epoch 2\)"),
                                         (2, r"by step 10 \(read every 2\) \(epoch 2\)")])
def test_a_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, every, found):
    class Poison(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                kernel = self.model.encoder.trainable_variables[0]
                kernel.assign(np.full(kernel.shape, np.nan, "float32"))

    with pytest.raises(pretraining.NonFiniteLossError,
                       match=found + r".*the last good checkpoint \(ckpt-8 in .*\) is kept"):
        pretraining.train(_config(train__steps_per_execution=every), str(tmp_path),
                          verbose=0, extra_callbacks=[Poison()])
    checkpoints = tmp_path / workdir.CHECKPOINT_DIR
    assert (checkpoints / "ckpt-8.index").exists() and not (checkpoints / "ckpt-16.index").exists()
    assert not (tmp_path / workdir.ENCODER_FILE).exists()


def test_a_divergence_before_any_checkpoint_does_not_promise_one(tmp_path):
    class Poison(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            kernel = self.model.encoder.trainable_variables[0]
            kernel.assign(np.full(kernel.shape, np.nan, "float32"))

    with pytest.raises(pretraining.NonFiniteLossError) as info:
        pretraining.train(_config(), str(tmp_path), verbose=0, extra_callbacks=[Poison()])
    assert "at step 1 (epoch 1); no checkpoint had been written yet" in str(info.value)
    assert "is kept" not in str(info.value)


def test_a_workdir_with_another_config_is_refused_and_left_alone(tmp_path):
    pretraining.train(_config(train__epochs=1), str(tmp_path), verbose=0)
    before = (tmp_path / workdir.CONFIG_FILE).read_text()
    with pytest.raises(workdir.WorkdirError, match="different config.*gp.weight"):
        pretraining.train(_config(train__epochs=1, gp__weight=0.0), str(tmp_path), verbose=0)
    # More epochs on a finished run: refused, saying why and how to train longer.
    with pytest.raises(workdir.WorkdirError,
                       match=r"fields: train.epochs\); .*train.epochs cannot change on a run "
                             r"\(its learning rate decays to zero .*new --workdir"):
        pretraining.train(_config(train__epochs=3), str(tmp_path), verbose=0)
    assert (tmp_path / workdir.CONFIG_FILE).read_text() == before
    assert (tmp_path / workdir.CHECKPOINT_DIR / "ckpt-8.index").exists()


def test_an_unwritable_workdir_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(workdir.WorkdirError, match="not writable"):
        pretraining.train(_config(), str(blocker / "run"), verbose=0)


@pytest.mark.parametrize("field,value,message", [
    ("gp__weight", -0.1, "gp.weight: must be >= 0"),
    ("gp__every_steps", 0, "gp.every_steps: must be at least 1"),
    ("train__batch_size", 1, "train.batch_size: must be at least 2"),
    ("model__arch", "resnet7", "model.arch: unknown arch 'resnet7'"),
    ("dataset__name", "mnist", "dataset.name: unknown dataset"),
    ("eval__num_passes", (0,), "eval.num_passes"),
    ("train__steps_per_execution", 3, "steps_per_execution=3 does not divide the 8 steps of "
                                      "an epoch: choose one of 1, 2, 4, 8"),
])
def test_bad_config_values_name_the_field(tmp_path, field, value, message):
    with pytest.raises(configuration.ConfigError, match=message):
        pretraining.train(_config(**{field: value}), str(tmp_path), verbose=0)
    assert not os.listdir(tmp_path)


def test_resuming_may_change_what_does_not_change_training(tmp_path, caplog):
    pretraining.train(_config(train__epochs=1), str(tmp_path), verbose=0)
    changed = _config(train__epochs=1, eval__num_passes=(1, 3), distribute="none",
                      train__jit_compile=True)
    with caplog.at_level("WARNING"):
        pretraining.train(changed, str(tmp_path), verbose=0)
    assert "changed fields that do not change training" in caplog.text
    assert "eval.num_passes" in caplog.text and "train.jit_compile" in caplog.text
    stored = json.loads((tmp_path / workdir.CONFIG_FILE).read_text())
    assert stored["eval"]["num_passes"] == [1, 3] and stored["distribute"] == "none"


def test_a_batch_that_does_not_split_over_the_replicas_is_refused_first(tmp_path, monkeypatch):
    with pytest.raises(configuration.ConfigError,
                       match=r"--config.train.batch_size=32 does not split equally over 3 "
                             r"replicas.*multiple of 3, e.g. 30 or 33"):
        configuration.check_replicas(_config(), 3)
    configuration.check_replicas(_config(), 4)  # 32 = 4 x 8 is fine
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1", "/cpu:2"])
    monkeypatch.setattr(pretraining.distribute, "strategy_for", lambda name: strategy)
    with pytest.raises(configuration.ConfigError, match="over 3 replicas"):
        pretraining.train(_config(), str(tmp_path / "run"), verbose=0)
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_checkpoints_within_an_epoch_resume_to_the_uninterrupted_weights(tmp_path):
    config = _config(train__epochs=2, train__checkpoint_every_steps=3)  # 8 steps an epoch
    full = pretraining.train(config, str(tmp_path / "full"), verbose=0)
    with pytest.raises(KeyboardInterrupt):
        pretraining.train(config, str(tmp_path / "resumed"), verbose=0,
                          extra_callbacks=[StopAtStep(11)])
    latest = tf.train.latest_checkpoint(str(tmp_path / "resumed" / workdir.CHECKPOINT_DIR))
    assert latest.endswith("ckpt-9")  # epoch 2, step 1 (saved at 3, 6, 8, 9)
    resumed = pretraining.train(config, str(tmp_path / "resumed"), verbose=0)
    assert int(resumed.optimizer.iterations) == int(full.optimizer.iterations) == 16
    for a, b in zip(_weights(full), _weights(resumed)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_several_steps_per_call_train_and_checkpoint_as_one_step_calls_do(tmp_path):
    full = pretraining.train(_config(train__epochs=2), str(tmp_path / "full"), verbose=0)
    config = _config(train__epochs=2, train__checkpoint_every_steps=3,
                     train__steps_per_execution=4)  # 8 steps an epoch: two calls
    with pytest.raises(KeyboardInterrupt):
        pretraining.train(config, str(tmp_path / "calls"), verbose=0,
                          extra_callbacks=[StopAtStep(12)])
    checkpoints = tmp_path / "calls" / workdir.CHECKPOINT_DIR
    # Saved where a call crossed a multiple of 3 (at 4, 8 and 12), and at the epoch's end.
    saved = sorted(int(p.name[5:-6]) for p in checkpoints.glob("ckpt-*.index"))
    assert saved == [8, 12]  # the manager keeps the last two
    # Resuming mid-epoch with 8 steps a call would end past the epoch: refused, by name,
    # and the stored config still holds the run's own value.
    stored = (tmp_path / "calls" / workdir.CONFIG_FILE).read_text()
    with pytest.raises(configuration.ConfigError,
                       match="steps_per_execution=8 does not divide the 4 steps left"):
        pretraining.train(_config(train__epochs=2, train__checkpoint_every_steps=3,
                                  train__steps_per_execution=8),
                          str(tmp_path / "calls"), verbose=0)
    assert (tmp_path / "calls" / workdir.CONFIG_FILE).read_text() == stored
    resumed = pretraining.train(config, str(tmp_path / "calls"), verbose=0)
    assert int(resumed.optimizer.iterations) == int(full.optimizer.iterations) == 16
    # The graph loop rounds a little differently from one call a step: 16 LARS steps later the
    # weights are 7e-7 apart (relative); a learning rate 0.1% higher moves them 2.6e-3.
    same, calls = (np.concatenate([w.ravel() for w in _weights(m)]) for m in (full, resumed))
    assert np.linalg.norm(calls - same) / np.linalg.norm(same) < 1e-5
