"""Mixed precision: loss-scaled runs resume and rerun bit-exactly with checkpoints numbered by
steps taken; a run trained in 16 bits is evaluated, estimated and exported in the precision
its results record."""

import os

import keras
import numpy as np
import pytest

from invcl_tf import eval_protocol, pretraining, serving, workdir
from invcl_tf.data import sources
from tests.interrupts import StopAfterEpoch
from tests.repo_configs import spirograph_cpu

pytestmark = pytest.mark.slow


def _config(**train):
    config = spirograph_cpu.get_config("tiny")  # 8 steps an epoch
    config.eval.every_epochs = 0
    for name, value in train.items():
        config.train[name] = value
    return config


def _checkpoints(directory):
    names = os.listdir(os.path.join(directory, workdir.CHECKPOINT_DIR))
    return sorted(int(n[len("ckpt-"):-len(".index")]) for n in names if n.endswith(".index"))


def _state(model):
    return [np.asarray(w) for w in model.encoder.weights + model.head.weights
            + model.optimizer.variables]


def test_a_mixed_float16_run_resumes_and_reruns_bit_exactly(tmp_path):
    config = _config(precision="mixed_float16", epochs=2)
    full = pretraining.train(config, str(tmp_path / "full"), verbose=0)
    assert type(full.optimizer).__name__ == "LossScaleOptimizer"
    # The loss scaler skips the first steps (its scale starts too high), yet checkpoints
    # count the steps taken: 8 an epoch, not the optimizer's updates.
    assert int(full.optimizer.iterations) < 16
    assert _checkpoints(tmp_path / "full") == [8, 16]
    with pytest.raises(KeyboardInterrupt):
        pretraining.train(config, str(tmp_path / "resumed"), verbose=0,
                          extra_callbacks=[StopAfterEpoch(1)])
    assert _checkpoints(tmp_path / "resumed") == [8]
    resumed = pretraining.train(config, str(tmp_path / "resumed"), verbose=0)
    assert _checkpoints(tmp_path / "resumed") == [8, 16]
    for a, b in zip(_state(full), _state(resumed)):  # the loss scale's state included
        np.testing.assert_array_equal(a, b)
    rerun = pretraining.train(config, str(tmp_path / "full"), verbose=0)  # trains nothing
    assert _checkpoints(tmp_path / "full") == [8, 16]
    for a, b in zip(_state(full), _state(rerun)):
        np.testing.assert_array_equal(a, b)


def _policies(model):
    return {layer.dtype_policy.name for layer in model.layers
            if not isinstance(layer, keras.layers.InputLayer)}


def test_a_bfloat16_run_is_evaluated_and_exported_in_float32(tmp_path):
    config = _config(precision="mixed_bfloat16", epochs=1)
    config.eval.num_passes = (1,)
    model = pretraining.train(config, str(tmp_path), verbose=0)
    assert _policies(model.encoder) == {"mixed_bfloat16"}
    data = sources.load(config)
    as_trained = eval_protocol.evaluate(model.encoder, data, config)
    float_copy = eval_protocol.inference_encoder(model.encoder, "float32")
    assert _policies(float_copy) == {"float32"}
    recast = eval_protocol.evaluate(float_copy, data, config)
    assert as_trained["eval_precision"] == "float32"
    for name in ("mse", "conditional_variance", "penalty_estimate", "nuisance_mse"):
        assert as_trained[name] == recast[name], name  # float32 it says, float32 it is
    # The evaluation in bf16 moves the probe's scores, never the penalty estimate.
    config.eval.precision = "mixed_bfloat16"
    rounded = eval_protocol.evaluate(model.encoder, data, config)
    assert rounded["mse"]["1"] != recast["mse"]["1"]
    assert rounded["penalty_estimate"] == recast["penalty_estimate"]
    loaded = workdir.load_encoder(str(tmp_path))
    assert _policies(loaded) == {"float32"}
    path = serving.export_run(str(tmp_path), str(tmp_path / "export"))
    x = np.random.default_rng(0).uniform(size=(4, 32, 32, 3)).astype("float32")
    served = np.asarray(serving.SavedEncoder(path)(x))
    assert served.dtype == np.float32
    np.testing.assert_allclose(served, np.asarray(float_copy(x, training=False)), rtol=1e-5,
                               atol=1e-6)
