"""invcl-report: a tiny seeds x λ study end to end, resumed without retraining (slow)."""

import json
import os
import subprocess
import sys

import pytest

from invcl_tf import experiments, pretraining, study
from tests.repo_configs import REPO, config_path, spirograph_cpu

pytestmark = pytest.mark.slow

TINY = config_path("spirograph_cpu") + ":tiny"


def _report(output, *flags):
    return subprocess.run(
        [sys.executable, "-m", "invcl_tf.report", f"--config={TINY}", f"--output={output}",
         "--config.report.seeds=0,1", "--config.report.weights=0,0.01", *flags],
        capture_output=True, text=True, cwd=REPO, timeout=1200,
        env=dict(os.environ, PYTHONPATH=REPO))


def test_a_tiny_study_writes_every_output_and_resumes_without_retraining(tmp_path):
    proc = _report(tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "run 4/4 (seed 1, λ = 0.01) starting" in proc.stdout
    report = json.load(open(tmp_path / study.REPORT_FILE))
    assert report["weights"] == ["0.0", "0.01"] and report["seeds"] == [0, 1]
    assert report["per_weight"]["0.01"]["metrics"]["mse"]["1"]["n"] == 2
    assert "mse/1" in report["paired_differences"]["0.01"]
    for name in (study.README_FILE, study.MSE_PLOT, study.MONITOR_PLOT, study.ROBUSTNESS_PLOT):
        assert os.path.getsize(tmp_path / name) > 500, name
    readme = open(tmp_path / study.README_FILE).read()
    assert study.PAPER_SPIROGRAPH["label"] in readme
    run = experiments.run_dir(str(tmp_path), 1, 0.01)
    assert os.path.exists(os.path.join(run, "results.json"))
    assert os.path.exists(os.path.join(run, "robustness.json"))
    stamps = {name: os.path.getmtime(os.path.join(run, "checkpoints", name))
              for name in os.listdir(os.path.join(run, "checkpoints"))}

    proc = _report(tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("already, skipped") == 4
    assert stamps == {name: os.path.getmtime(os.path.join(run, "checkpoints", name))
                      for name in os.listdir(os.path.join(run, "checkpoints"))}
    # Nothing retrained: the report keeps the training invocation's time and commit.
    rewritten = json.load(open(tmp_path / study.REPORT_FILE))["meta"]
    assert rewritten["wall_time_s"] == report["meta"]["wall_time_s"] > 10
    assert rewritten["commit"] == report["meta"]["commit"]
    assert "report_rewritten_at_commit" in rewritten


def test_the_papers_numbers_stand_beside_the_papers_setting_only():
    from invcl_tf import configuration

    plain = spirograph_cpu.get_config("tiny")
    assert experiments.paper_numbers(plain) is study.PAPER_SPIROGRAPH
    geo = configuration.import_config_file(config_path("spirograph_geo")).get_config("tiny")
    assert experiments.paper_numbers(geo) is None
    cifar = configuration.import_config_file(config_path("cifar10")).get_config("tiny")
    assert experiments.paper_numbers(cifar) is study.PAPER_CIFAR10
    cifar.gp.covers = "color+geometry"
    assert experiments.paper_numbers(cifar) is None


def test_a_diverged_run_is_a_result_and_the_study_goes_on(tmp_path, monkeypatch):
    config = spirograph_cpu.get_config("tiny")
    config.report.seeds = (0,)
    config.report.weights = (0.0, 0.1)
    config.report.robustness = False
    config.eval.every_epochs = 0
    real = pretraining.train

    def train(run_config, directory, verbose=1):
        if run_config.gp.weight == 0.1:  # as λ = 0.1 might on Spirograph at some budget
            raise pretraining.NonFiniteLossError("the loss became non-finite at step 3")
        return real(run_config, directory, verbose=0)

    monkeypatch.setattr(pretraining, "train", train)
    lines = []
    experiments.run_study(config, str(tmp_path), log=lines.append)
    report = json.load(open(tmp_path / study.REPORT_FILE))
    excluded = {(r["seed"], r["status"]) for r in report["excluded"]}
    assert excluded == {(0, "diverged")}
    assert report["per_weight"]["0.0"]["metrics"]["mse"]["1"]["n"] == 1
    # Not retried when the study is started again.
    experiments.run_study(config, str(tmp_path), log=lines.append)
    assert lines[-1].startswith("run 2/2 (seed 0, λ = 0.1): diverged already, skipped")


def test_missing_data_fails_before_any_run(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "invcl_tf.report", f"--config={config_path('cifar10')}:tiny",
         f"--output={tmp_path / 'study'}", f"--config.dataset.data_dir={tmp_path / 'tfds'}"],
        capture_output=True, text=True, cwd=REPO, timeout=300,
        env=dict(os.environ, PYTHONPATH=REPO))
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.startswith("invcl-report")]
    assert len(lines) == 1 and "--config.dataset.data_dir" in lines[0] and "tfds build" in lines[0]
    assert not (tmp_path / "study").exists()


def test_a_study_refuses_runs_of_another_config_and_records_every_invocation(tmp_path):
    from invcl_tf import workdir

    def tiny(**changes):
        config = spirograph_cpu.get_config("tiny")
        config.report.seeds, config.report.weights = (0,), (0.0,)
        config.report.robustness = False
        config.eval.every_epochs = 0
        for dotted, value in changes.items():
            section, field = dotted.split("__")
            config[section][field] = value
        return config

    lines = []
    experiments.run_study(tiny(), str(tmp_path), log=lines.append)
    run = experiments.run_dir(str(tmp_path), 0, 0.0)
    assert os.path.exists(os.path.join(run, "export", "saved_model.pb"))  # as invcl-train
    stamps = {name: os.path.getmtime(os.path.join(run, "checkpoints", name))
              for name in os.listdir(os.path.join(run, "checkpoints"))}
    with pytest.raises(workdir.WorkdirError,
                       match=r"holds runs made with another config \(fields: model.arch, "
                             r"train.epochs; first in .*seed0_gp0.0\)"):
        experiments.run_study(tiny(train__epochs=5, model__arch="resnet18"), str(tmp_path))
    # A seed added with other epochs would be pooled with runs it does not match: refused
    # before it trains.
    with pytest.raises(workdir.WorkdirError, match=r"fields: train.epochs"):
        experiments.run_study(tiny(report__seeds=(0, 1), train__epochs=1), str(tmp_path))
    assert not os.path.exists(experiments.run_dir(str(tmp_path), 1, 0.0))
    # Evaluation settings may change: the finished run is evaluated again, not retrained.
    experiments.run_study(tiny(eval__num_passes=(1, 3)), str(tmp_path), log=lines.append)
    assert "evaluation settings changed, evaluated again" in lines[-1]
    results = json.load(open(os.path.join(run, "results.json")))
    assert sorted(results["mse"]) == ["1", "3"]
    assert stamps == {name: os.path.getmtime(os.path.join(run, "checkpoints", name))
                      for name in os.listdir(os.path.join(run, "checkpoints"))}
    experiments.run_study(tiny(eval__num_passes=(1, 3)), str(tmp_path), log=lines.append)
    assert lines[-1].startswith("run 1/1 (seed 0, λ = 0): done already, skipped")
    meta = json.load(open(tmp_path / study.REPORT_FILE))["meta"]
    assert [call["trained"] for call in meta["invocations"]] == [True, True, False]
    readme = open(tmp_path / study.README_FILE).read()
    assert "| invocation 3 |" in readme


def test_the_recorded_command_is_the_one_a_user_types():
    root = os.path.dirname(os.path.dirname(os.path.abspath(experiments.__file__)))
    argv = [os.path.join(root, "invcl_tf", "report.py"),
            f"--config={os.path.join(root, 'configs', 'spirograph_cpu.py')}:tiny",
            "--output=runs/study", "--config.report.seeds=0,1", "--config.dataset.data_dir=/data"]
    assert experiments.command(argv) == (
        "python -m invcl_tf.report --config=configs/spirograph_cpu.py:tiny --output=runs/study "
        "--config.report.seeds=0,1 --config.dataset.data_dir=/data")


def test_committed_reports_record_the_users_command():
    results = os.path.join(REPO, "docs", "results")
    for name in sorted(os.listdir(results)):
        with open(os.path.join(results, name, study.REPORT_FILE), encoding="utf-8") as f:
            meta = json.load(f)["meta"]
        commands = [meta["command"]] + [i["command"] for i in meta.get("invocations", [])]
        assert all(c.startswith("python -m invcl_tf.report --config=configs/") for c in commands)
        with open(os.path.join(results, name, study.README_FILE), encoding="utf-8") as f:
            assert REPO not in f.read() and "/work/" not in json.dumps(meta)
