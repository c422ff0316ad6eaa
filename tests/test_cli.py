"""The absl entry points, run as a user runs them (subprocesses; marked slow)."""

import json
import os
import subprocess
import sys

import pytest

from tests.repo_configs import spirograph_cpu

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(REPO, "configs", "spirograph_cpu.py") + ":tiny"
RESULT_KEYS = {"mse", "mse_per_target", "conditional_variance", "total_variance",
               "penalty_estimate", "nuisance_mse", "nuisance_mse_baseline"}

pytestmark = pytest.mark.slow


def _run(module, *args):
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=600)


def _error_lines(proc):
    return [line for line in proc.stderr.splitlines() if line.startswith("invcl-")]


def test_train_then_evaluate_end_to_end(tmp_path):
    workdir = str(tmp_path / "run")
    proc = _run("invcl_tf.train", f"--config={TINY}", f"--workdir={workdir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Linear probe, test MSE" in proc.stdout
    results = json.load(open(os.path.join(workdir, "results.json")))
    assert RESULT_KEYS <= set(results)
    assert set(results["mse"]) == {"1", "2"}
    assert set(results["mse_per_target"]["2"]) == {"m", "b", "sigma", "rfore"}
    assert os.path.getsize(os.path.join(workdir, "feature_averaging.png")) > 1000
    assert os.path.exists(os.path.join(workdir, "export", "saved_model.pb"))

    exported = str(tmp_path / "exported")
    proc = _run("invcl_tf.export", f"--workdir={workdir}", f"--output={exported}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = _run("invcl_tf.evaluate", f"--saved_model={exported}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    from_export = json.load(open(exported + ".eval/results.json"))
    assert from_export["mse"]["2"] == pytest.approx(results["mse"]["2"], rel=1e-5)

    proc = _run("invcl_tf.evaluate", f"--workdir={workdir}", "--num_passes=1,3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = json.load(open(os.path.join(workdir, "results.json")))
    assert set(again["mse"]) == {"1", "3"}
    # Same seeds, same encoder: M = 1 is drawn identically by both runs.
    assert again["mse"]["1"] == pytest.approx(results["mse"]["1"], rel=1e-6)

    # Re-evaluation with other eval settings into another directory leaves the run's own
    # results alone; fields that change training are not overrides evaluate takes.
    other = tmp_path / "reeval"
    proc = _run("invcl_tf.evaluate", f"--workdir={workdir}", f"--output_dir={other}",
                "--config.eval.probe_targets=pretraining", "--config.eval.probe_l2=0.001")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.load(open(other / "results.json"))["probe_inputs"] == "pretraining"
    assert json.load(open(os.path.join(workdir, "results.json"))) == again
    proc = _run("invcl_tf.evaluate", f"--workdir={workdir}", "--config.gp.weight=0.5")
    assert proc.returncode != 0
    (line,) = _error_lines(proc)
    assert "--config.gp.weight: cannot be changed here" in line

    proc = _run("invcl_tf.evaluate", f"--workdir={workdir}", "--robustness")
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweeps = json.load(open(os.path.join(workdir, "robustness.json")))
    assert set(sweeps) == {"background_shift", "background_widen", "h_shift", "h_widen"}
    values = [p["value"] for p in sweeps["h_shift"]]
    assert values == list(spirograph_cpu.get_config("tiny").eval.robustness_values)
    assert all(p["mse"] > 0 for p in sweeps["background_widen"])
    assert os.path.exists(os.path.join(workdir, "robustness.png"))


@pytest.mark.parametrize("flag,expected", [
    ("--config.gp.wieght=0", "--config.gp.wieght: no such config field; did you mean "
                             "--config.gp.weight?"),
    ("--config.train.learning_rate=nan", "--config.train.learning_rate: no such config field; "
                                         "the fields of train are base_lr, batch_size,"),
    ("--config.gp.weight=-1", "--config.gp.weight: must be >= 0"),
    ("--config.train.batch_size=1", "--config.train.batch_size: must be at least 2"),
    ("--config.model.arch=vgg", "--config.model.arch: unknown arch"),
])
def test_bad_input_gives_one_line_and_an_exit_code(tmp_path, flag, expected):
    proc = _run("invcl_tf.train", f"--config={TINY}", f"--workdir={tmp_path / 'run'}", flag)
    assert proc.returncode != 0
    lines = _error_lines(proc)
    assert len(lines) == 1 and expected in lines[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()
    # TensorFlow's C++ start-up lines are silenced: the error is all the user reads.
    for noise in ("absl::InitializeLog", "cuInit", "oneDNN", "cuda drivers"):
        assert noise not in proc.stderr, proc.stderr[-2000:]


def test_an_unexpected_error_keeps_its_traceback(tmp_path):
    # A bug inside training (here a ValueError no one raises on purpose) must not be printed
    # as if it were a bad flag.
    script = (
        "import sys\n"
        "from invcl_tf import pretraining, train\n"
        "def bug(*args, **kwargs):\n"
        "    raise ValueError('an internal bug')\n"
        "pretraining.train = bug\n"
        f"sys.argv = ['invcl-train', '--config={TINY}', '--workdir={tmp_path / 'run'}']\n"
        "train.run()\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=REPO), cwd=REPO, timeout=300)
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "ValueError: an internal bug" in proc.stderr
    assert not _error_lines(proc)


def test_evaluate_without_a_trained_run_names_the_fix(tmp_path):
    proc = _run("invcl_tf.evaluate", f"--workdir={tmp_path}")
    assert proc.returncode != 0
    (line,) = _error_lines(proc)
    assert "invcl-train" in line and "config.json" in line


def test_evaluate_names_a_bad_num_passes(tmp_path):
    proc = _run("invcl_tf.evaluate", f"--workdir={tmp_path}", "--num_passes=1,zero")
    assert proc.returncode != 0
    (line,) = _error_lines(proc)
    assert "--num_passes=1,zero" in line
