"""Runs a study: every (seed, λ) of ``config.report`` trained and evaluated as ``invcl-train``
would, each in its own workdir under ``OUTPUT/runs/``, then the report of ``invcl_tf.study``.

Started again on the same output it skips finished runs, resumes an interrupted one from its
checkpoint, and does not retry a run that diverged (its ``status.json`` says so).
"""

import copy
import json
import os
import platform
import subprocess
import sys
import time

from invcl_tf import eval_protocol, pretraining, results_io, serving, stored_configs, study
from invcl_tf import workdir
from invcl_tf.data import sources

RUNS_DIR = "runs"
STATUS_FILE = "status.json"
_PAPER = {"spirograph": study.PAPER_SPIROGRAPH, "cifar10": study.PAPER_CIFAR10,
          "cifar100": study.PAPER_CIFAR100}


def study_weights(config):
    """λ of the study: ``report.weights``, or 0, the config's λ and 0.1 (the collapse)."""
    weights = config.report.weights
    if weights is None:
        weights = (0.0, config.gp.weight, 0.1)
    return tuple(sorted({float(w) for w in weights}))


def run_config(config, seed, weight):
    """The config of one run of the study."""
    run = copy.deepcopy(config)
    run.seed = int(seed)
    run.gp.weight = float(weight)
    return run


def run_dir(output, seed, weight):
    """``OUTPUT/runs/seed{S}_gp{λ}``."""
    return os.path.join(output, RUNS_DIR, f"seed{seed}_gp{study.weight_key(weight)}")


def _machine():
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    return f"{model}, {os.cpu_count()} cores, {platform.system()}"


def command(argv=None):
    """The command as a user types it: ``python -m invcl_tf.report`` and the flags, with
    paths inside the repository relative to it (a record that holds on any machine)."""
    argv = sys.argv if argv is None else argv
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def relative(arg):
        flag, eq, value = arg.partition("=")
        path = value.split(":", 1)  # --config=FILE:variant
        if eq and os.path.isabs(path[0]) and os.path.commonpath([root, path[0]]) == root:
            return flag + eq + ":".join([os.path.relpath(path[0], root)] + path[1:])
        return arg

    return " ".join(["python -m invcl_tf.report"] + [relative(a) for a in argv[1:]])


def _commit():
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=here, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _train_and_evaluate(config, directory):
    """One run as ``invcl-train`` does it (train, evaluate, export); returns its status."""
    try:
        model = pretraining.train(config, directory, verbose=2)
    except pretraining.NonFiniteLossError as err:
        return {"status": "diverged", "reason": str(err)}
    data = sources.load(config)
    results = eval_protocol.evaluate(model.encoder, data, config)
    if config.report.robustness and data.task != "unlabelled":
        sweeps = sources.robustness_sweeps(data, config)
        results_io.write_robustness(eval_protocol.robustness(model.encoder, data, config,
                                                             sweeps), directory)
    results_io.write_results(results, directory)
    serving.export_run(directory)
    return {"status": "done"}


def check_runs(config, output, cells):
    """Raises ``WorkdirError`` (one line naming the fields) when a run already in ``output``
    was made with a config that ``config`` may not resume; returns the finished cells whose
    evaluation settings (``eval.*``, ``report.robustness``) changed: they are evaluated again.
    Writes nothing."""
    again = []
    for seed, weight in cells:
        directory = run_dir(output, seed, weight)
        stored = workdir.read_json(os.path.join(directory, workdir.CONFIG_FILE))
        if stored is None:
            continue
        wanted = json.loads(stored_configs.to_json(run_config(config, seed, weight)))
        refused, allowed = stored_configs.training_changes(stored, wanted)
        if refused:
            raise workdir.WorkdirError(
                f"--output {output} holds runs made with another config (fields: "
                f"{', '.join(refused)}; first in {directory}); use a new --output, or the "
                "config the study was started with")
        if any(f.startswith("eval.") or f == "report.robustness" for f in allowed) and \
                workdir.read_json(os.path.join(directory, STATUS_FILE)):
            again.append((seed, weight))
    return again


def _record(directory, seed, weight):
    status = workdir.read_json(os.path.join(directory, STATUS_FILE)) or {"status": "failed"}
    return {"seed": seed, "weight": weight, "status": status["status"],
            "reason": status.get("reason", ""),
            "results": workdir.read_json(os.path.join(directory, results_io.RESULTS_FILE)),
            "monitor": workdir.read_json(os.path.join(directory, workdir.MONITOR_FILE)),
            "robustness": workdir.read_json(os.path.join(directory,
                                                         results_io.ROBUSTNESS_FILE))}


def run_study(config, output, log=print):
    """Trains and evaluates every run of the study that is not finished, then writes the
    report into ``output``; returns the paths written. A run that diverges is recorded as
    such and the study goes on."""
    sources.load(config)  # missing data fails here, before any run starts
    cells = [(s, w) for w in study_weights(config) for s in config.report.seeds]
    again = check_runs(config, output, cells)  # before anything runs or is written
    start = time.time()
    records = []
    trained = False
    for i, (seed, weight) in enumerate(cells, 1):
        directory = run_dir(output, seed, weight)
        status_path = os.path.join(directory, STATUS_FILE)
        done = workdir.read_json(status_path)
        minutes = (time.time() - start) / 60
        again_now = (seed, weight) in again and done["status"] == "done"
        if again_now:
            log(f"run {i}/{len(cells)} (seed {seed}, λ = {weight:g}): evaluation settings "
                f"changed, evaluated again ({minutes:.1f} min so far)")
        elif done:
            log(f"run {i}/{len(cells)} (seed {seed}, λ = {weight:g}): {done['status']} "
                f"already, skipped ({minutes:.1f} min so far)")
        else:
            log(f"run {i}/{len(cells)} (seed {seed}, λ = {weight:g}) starting "
                f"({minutes:.1f} min so far)")
        if again_now or not done:
            status = _train_and_evaluate(run_config(config, seed, weight), directory)
            trained = True
            os.makedirs(directory, exist_ok=True)  # a run may fail before it made its workdir
            workdir.atomic_write_text(status_path, json.dumps(status))
        records.append(_record(directory, seed, weight))
    report = study.aggregate(records, paper_numbers(config))
    wall = round(time.time() - start, 1)
    invocation = {"command": command(), "commit": _commit(),
                  "at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                  "trained": trained, "wall_time_s": wall}
    previous = (workdir.read_json(os.path.join(output, study.REPORT_FILE)) or {}).get("meta")
    invocations = list((previous or {}).get("invocations") or (
        [{"command": previous["command"], "commit": previous.get("commit")}]
        if previous and previous.get("command") else []))
    meta = {"command": invocation["command"], "commit": invocation["commit"],
            "machine": _machine(), "wall_time_s": wall, "config_name": config.dataset.name}
    if not trained and previous:
        # Only the report is rewritten: keep the record of the command that trained the runs.
        meta = {**previous, "report_rewritten_at_commit": invocation["commit"]}
    elif previous:  # trained more: the study's wall time is every training invocation's
        meta["wall_time_s"] = round(wall + sum(
            i.get("wall_time_s", 0) for i in invocations if i.get("trained")), 1)
    meta["invocations"] = invocations + [invocation]
    return study.write_report(report, output, meta)


def paper_numbers(config):
    """The paper's numbers to set beside the study's, or None where its setting is not the
    paper's (Spirograph with geometric nuisance, or geometry under the penalty)."""
    if config.dataset.rotation or config.dataset.shift or config.gp.covers != "color":
        return None
    return _PAPER.get(config.dataset.name)
