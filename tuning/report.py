"""What a search leaves behind: a CSV of all trials, the best config as a runnable .py, a PNG."""

import csv
import json
import os

from invcl_tf import configuration
from tuning.hypermodel import BASELINE, trial_config

CSV_FILE = "trials.csv"
BEST_CONFIG_FILE = "best_config.py"
PLOT_FILE = "objective_vs_lambda.png"

_CONFIG_TEMPLATE = '''"""Best trial {trial_id} of the search in {directory}: {objective} = {score:.6g}.

    python -m invcl_tf.train --config={path} --workdir=runs/best
"""

import json

import ml_collections
from ml_collections import config_dict

_CONFIG = """{config_json}"""


def get_config(arg=None):
    """The best trial's full config."""
    del arg
    config = ml_collections.ConfigDict(json.loads(_CONFIG))
    if config.dataset.get("data_dir", "") is None:  # keep --config.dataset.data_dir settable
        config.dataset.data_dir = config_dict.placeholder(str)
    return config
'''


def trial_rows(tuner, hypermodel):
    """One dict per trial: id, status, score and the effective values of the searched fields."""
    rows = []
    for trial in tuner.oracle.trials.values():
        config = trial_config(hypermodel.config, trial.hyperparameters, hypermodel.space)
        row = {"trial_id": trial.trial_id, "status": trial.status,
               BASELINE: bool(trial.hyperparameters.values.get(BASELINE)),
               # Hyperband: the trial this one continues with more epochs.
               "continues": trial.hyperparameters.values.get("tuner/trial_id", ""),
               "score": trial.score if trial.score is not None else ""}
        for name in hypermodel.space:
            section, field = name.split(".")
            row[name] = getattr(getattr(config, section), field)
        rows.append(row)
    return sorted(rows, key=lambda r: int(r["trial_id"]))


def write_outputs(tuner, hypermodel, directory):
    """Writes the CSV, the best config and the plot into ``directory``; returns their paths."""
    rows = trial_rows(tuner, hypermodel)
    csv_path = os.path.join(directory, CSV_FILE)
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    best_trials = [t for t in tuner.oracle.get_best_trials(len(rows))
                   if t.status == "COMPLETED" and t.score is not None]
    if not best_trials:
        print("no trial completed: no best config written (see the statuses in the CSV)")
        return csv_path, plot(rows, hypermodel.objective.name,
                              os.path.join(directory, PLOT_FILE))
    best = best_trials[0]
    config = trial_config(hypermodel.config, best.hyperparameters, hypermodel.space)
    best_path = os.path.join(directory, BEST_CONFIG_FILE)
    with open(best_path, "w") as f:
        f.write(_CONFIG_TEMPLATE.format(
            trial_id=best.trial_id, directory=directory, objective=hypermodel.objective.name,
            score=best.score, path=best_path,
            config_json=json.dumps(json.loads(configuration.to_json(config)), indent=2)))
    return csv_path, best_path, plot(rows, hypermodel.objective.name,
                                     os.path.join(directory, PLOT_FILE))


def plot(rows, objective, path):
    """The objective against λ on a symlog axis, so the λ = 0 baseline shows."""
    import matplotlib  # deferred: only the report needs it, headless

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in rows if r["score"] != ""]
    fig, ax = plt.subplots(figsize=(6, 4))
    for baseline, style, label in ((False, "o", "penalty"), (True, "s", "λ = 0 baseline")):
        points = [(r["gp.weight"], r["score"]) for r in done if r[BASELINE] == baseline]
        if points:
            ax.plot(*zip(*points), style, label=label)
    ax.set_xscale("symlog", linthresh=1e-4)
    ax.set_xlabel("λ (gp.weight)")
    ax.set_ylabel(objective)
    if objective.endswith("mse"):
        ax.set_yscale("log")
    ax.legend(fontsize="small")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
