"""The in-training monitor reads what the evaluation reads, and every robustness sweep starts
at the evaluation's own M = 1 score where its transformation is the training one."""

import json
import logging

import numpy as np
import pytest

from invcl_tf import eval_protocol, pretraining, workdir
from invcl_tf.data import sources
from tests.repo_configs import spirograph_cpu

pytestmark = pytest.mark.slow


def test_the_monitor_agrees_with_the_evaluation_and_sweeps_start_at_it(tmp_path):
    config = spirograph_cpu.get_config("tiny")  # 64 features; probe split 128, test 64
    model = pretraining.train(config, str(tmp_path), verbose=0)
    data = sources.load(config)
    # The monitor's probe fits at least 4 examples a feature (here the whole probe split):
    # on monitor_size = 64 examples of 64 features the ridge interpolated, reading 20-40
    # against the evaluation's 0.3.
    assert eval_protocol.monitor_sizes(data, config, 64) == (128, 64)
    warnings = _TracingWarnings()
    logging.getLogger("tensorflow").addHandler(warnings)
    try:
        results = eval_protocol.evaluate(model.encoder, data, config)
        sweeps = sources.robustness_sweeps(data, config)
        found = eval_protocol.robustness(model.encoder, data, config, sweeps)
    finally:
        logging.getLogger("tensorflow").removeHandler(warnings)
    # One graph per transformation, none traced again: TF's retracing warning stays silent.
    assert warnings.messages == []
    monitor = json.loads((tmp_path / workdir.MONITOR_FILE).read_text())
    final = monitor["monitor_probe_mse"][-1]
    assert results["mse"]["1"] / 2 < final < 2 * results["mse"]["1"]
    zero = {name: [p["mse"] for p in points if p["value"] == 0.0]
            for name, points in found.items()}
    assert len(zero) == 4 and all(len(v) == 1 for v in zero.values())
    # v = 0 is the training transformation in every sweep: the same draws, the same score.
    assert {v[0] for v in zero.values()} == {results["mse"]["1"]}
    assert len({p["mse"] for points in found.values() for p in points}) > 1


class _TracingWarnings(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        if "retracing" in record.getMessage():
            self.messages.append(record.getMessage())


def test_the_monitor_traces_once_and_follows_the_weights(tmp_path):
    config = spirograph_cpu.get_config("tiny")
    config.eval.every_epochs = 1
    model = pretraining.train(config, str(tmp_path), verbose=0)
    data = sources.load(config)
    monitor = json.loads((tmp_path / workdir.MONITOR_FILE).read_text())
    probe = eval_protocol.QuickProbe(data, config)
    first, again = probe(model.encoder), probe(model.encoder)
    # The last epoch's entry was made with these weights by the callback's own probe.
    assert first["probe_mse"] == again["probe_mse"] == monitor["monitor_probe_mse"][-1]
    # A recast (bf16) probe copies the encoder's weights at every call, as a new one would.
    config.eval.precision = "mixed_bfloat16"
    recast = eval_protocol.QuickProbe(data, config)
    before = recast(model.encoder)
    kernel = next(w for w in model.encoder.weights if "kernel" in w.path)
    kernel.assign(kernel * 1.5)
    after = recast(model.encoder)
    assert after["probe_mse"] != before["probe_mse"]
    assert after == eval_protocol.QuickProbe(data, config)(model.encoder)
    graph = recast._views._passes
    recast(model.encoder)
    assert recast._views._passes is graph  # traced once, at the first epoch
    np.testing.assert_equal(list(after), list(before))
