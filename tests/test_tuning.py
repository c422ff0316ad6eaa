"""Keras Tuner search over λ: baseline first, resume, failed trials, chief + worker (slow)."""

import csv
import importlib.util
import os
import socket
import subprocess
import sys
import time

import pytest
from absl import flags
from ml_collections import config_flags

from invcl_tf import configuration
from tests.test_cli import REPO, TINY

pytestmark = pytest.mark.slow


def _search(directory, *flags, env=None):
    return subprocess.run(
        [sys.executable, "-m", "tuning.search", f"--config={TINY}", "--tuner=random",
         f"--directory={directory}", *flags],
        capture_output=True, text=True, cwd=REPO, timeout=600,
        env=dict(env or os.environ, PYTHONPATH=REPO))


def _rows(directory):
    with open(os.path.join(directory, "trials.csv")) as f:
        return list(csv.DictReader(f))


def test_search_runs_the_baseline_first_writes_outputs_and_resumes(tmp_path):
    proc = _search(tmp_path, "--max_trials=3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = _rows(tmp_path)
    assert [r["status"] for r in rows] == ["COMPLETED"] * 3
    assert rows[0]["baseline"] == "True" and float(rows[0]["gp.weight"]) == 0.0
    assert all(r["baseline"] == "False" and 1e-4 <= float(r["gp.weight"]) <= 1
               for r in rows[1:])
    assert os.path.getsize(tmp_path / "objective_vs_lambda.png") > 1000
    spec = importlib.util.spec_from_file_location("best", tmp_path / "best_config.py")
    best = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(best)
    config = best.get_config()
    configuration.validate(config)
    best_row = min(rows, key=lambda r: float(r["score"]))
    assert config.gp.weight == pytest.approx(float(best_row["gp.weight"]))
    # One numbering: the files' trial N is the "Trial #N" the search printed.
    assert [r["trial"] for r in rows] == ["1", "2", "3"]
    assert [r["role"] for r in rows] == ["baseline", "paired", "search"]
    assert "Search: Running Trial #1" in proc.stdout
    assert f"Trial #{best_row['trial']} " in best.__doc__
    # Every field of the best config takes an override, tuples and placeholders included.
    values = flags.FlagValues()
    argv = ["prog", f"--config={tmp_path / 'best_config.py'}", "--config.eval.num_passes=1,10",
            "--config.dataset.data_dir=/data/tfds", "--config.train.epochs=3"]
    config_flags.DEFINE_config_file("config", flag_values=values, sys_argv=argv)
    values(argv)
    assert values.config.eval.num_passes == (1, 10) and values.config.train.epochs == 3
    assert values.config.dataset.data_dir == "/data/tfds"

    proc = _search(tmp_path, "--max_trials=4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = _rows(tmp_path)
    assert len(again) == 4 and again[:3] == rows  # finished trials are not run again


def test_diverging_trials_are_recorded_as_failed(tmp_path):
    proc = _search(tmp_path, "--max_trials=2", "--max_consecutive_failed_trials=3",
                   '--space={"train.base_lr": ["choice", [1e30]]}')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [r["status"] for r in _rows(tmp_path)] == ["FAILED", "FAILED"]
    assert not (tmp_path / "best_config.py").exists()


def test_a_chief_and_a_worker_share_one_search(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def launch(tuner_id):
        env = dict(os.environ, PYTHONPATH=REPO, KERASTUNER_TUNER_ID=tuner_id,
                   KERASTUNER_ORACLE_IP="127.0.0.1", KERASTUNER_ORACLE_PORT=str(port))
        return subprocess.Popen(
            [sys.executable, "-m", "tuning.search", f"--config={TINY}", "--tuner=random",
             "--max_trials=3", f"--directory={tmp_path}"],
            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    chief = launch("chief")
    time.sleep(3)
    worker = launch("tuner0")
    outs = [p.communicate(timeout=600) for p in (worker, chief)]
    assert worker.returncode == 0, outs[0][1][-3000:]
    assert chief.returncode == 0, outs[1][1][-3000:]
    rows = _rows(tmp_path)
    assert [r["status"] for r in rows] == ["COMPLETED"] * 3


def test_hyperband_search_completes_with_the_baseline_first(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "tuning.search", f"--config={TINY}", "--tuner=hyperband",
         "--config.train.epochs=2", f"--directory={tmp_path}"],
        capture_output=True, text=True, cwd=REPO, timeout=600,
        env=dict(os.environ, PYTHONPATH=REPO))
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = _rows(tmp_path)
    assert len(rows) >= 2 and all(r["status"] == "COMPLETED" for r in rows)
    by_id = {r["trial"]: r for r in rows}
    assert rows[0]["baseline"] == "True"
    for row in rows[1:]:  # only the baseline and its continuations train with λ = 0
        parent = by_id.get(row["continues"])
        is_baseline = parent is not None and parent["baseline"] == "True"
        assert row["baseline"] == str(is_baseline)
        assert (float(row["gp.weight"]) == 0.0) == is_baseline
    assert (tmp_path / "best_config.py").exists()


@pytest.mark.parametrize("flag,expected", [
    ("--max_trials=0", "--max_trials=0: a search needs at least one trial"),
    ("--validation_fraction=1.5", "--validation_fraction=1.5: must lie in (0, 1)"),
    ('--space={"gp.wieght": ["log", 1e-4, 1]}', "--space: 'gp.wieght' is not a config field"),
])
def test_flags_that_cannot_work_get_one_line(tmp_path, flag, expected):
    proc = _search(tmp_path, flag)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.startswith("invcl-tune")]
    assert len(lines) == 1 and expected in lines[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


def test_a_search_on_class_folders_completes(tmp_path):
    from tests.test_probe_splits import _class_folder

    root = _class_folder(tmp_path / "images")
    proc = subprocess.run(
        [sys.executable, "-m", "tuning.search", f"--config={REPO}/configs/images.py:tiny",
         f"--config.dataset.path={root}", "--config.dataset.train_size=1000",
         "--config.dataset.test_size=1000", "--tuner=random", "--max_trials=2",
         f"--directory={tmp_path / 'tune'}"],
        capture_output=True, text=True, cwd=REPO, timeout=600,
        env=dict(os.environ, PYTHONPATH=REPO))
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = _rows(tmp_path / "tune")
    assert [r["status"] for r in rows] == ["COMPLETED"] * 2
    assert all(0 <= float(r["score"]) <= 1 for r in rows)  # validation accuracies
    assert (tmp_path / "tune" / "best_config.py").exists()
