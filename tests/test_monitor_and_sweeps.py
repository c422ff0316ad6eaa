"""The in-training monitor reads what the evaluation reads, and every robustness sweep starts
at the evaluation's own M = 1 score where its transformation is the training one."""

import json

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
    results = eval_protocol.evaluate(model.encoder, data, config)
    monitor = json.loads((tmp_path / workdir.MONITOR_FILE).read_text())
    final = monitor["monitor_probe_mse"][-1]
    assert results["mse"]["1"] / 2 < final < 2 * results["mse"]["1"]
    sweeps = sources.robustness_sweeps(data, config)
    found = eval_protocol.robustness(model.encoder, data, config, sweeps)
    zero = {name: [p["mse"] for p in points if p["value"] == 0.0]
            for name, points in found.items()}
    assert len(zero) == 4 and all(len(v) == 1 for v in zero.values())
    # v = 0 is the training transformation in every sweep: the same draws, the same score.
    assert {v[0] for v in zero.values()} == {results["mse"]["1"]}
    assert len({p["mse"] for points in found.values() for p in points}) > 1
