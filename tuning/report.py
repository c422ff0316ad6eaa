"""What a search leaves behind: a CSV of all trials, the best config as a runnable .py, a PNG."""

import csv
import os

from invcl_tf import results_io, stored_configs
from tuning import oracles
from tuning.hypermodel import BASELINE, baseline_settings, trial_config

CSV_FILE = "trials.csv"
BEST_CONFIG_FILE = "best_config.py"
PLOT_FILE = "objective_vs_lambda.png"

_CONFIG_TEMPLATE = '''"""Best trial of the search in {directory}: Trial #{trial} (as the search printed it;
its files are in trial_{trial_id}), {objective} = {score:.6g}.

    python -m invcl_tf.train --config={path} --workdir=runs/best
"""

from invcl_tf import stored_configs

_CONFIG = """{config_json}"""


def get_config(arg=None):
    """The best trial's full config, typed as the schema is: every field can be overridden
    with --config.<field>=value."""
    del arg
    return stored_configs.from_json(_CONFIG, locked=False)
'''


def trial_number(trial_id):
    """The number keras-tuner prints for a trial ("Search: Running Trial #N"): its id + 1."""
    return int(trial_id) + 1


def trial_rows(tuner, hypermodel):
    """One dict per trial: its number as printed, role (baseline, paired, search), status,
    score and the effective values of the searched fields."""
    _, paired = baseline_settings(hypermodel.config, hypermodel.space)
    rows = []
    for trial in tuner.oracle.trials.values():
        values = trial.hyperparameters.values
        config = trial_config(hypermodel.config, trial.hyperparameters, hypermodel.space)
        role = ("baseline" if values.get(BASELINE) else
                "paired" if oracles.is_paired(values, paired) else "search")
        parent = values.get("tuner/trial_id", "")
        row = {"trial": trial_number(trial.trial_id), "role": role, "status": trial.status,
               BASELINE: bool(values.get(BASELINE)),
               # Hyperband: the trial this one continues with more epochs.
               "continues": trial_number(parent) if parent != "" else "",
               "score": trial.score if trial.score is not None else ""}
        for name in hypermodel.space:
            section, field = name.split(".")
            row[name] = getattr(getattr(config, section), field)
        rows.append(row)
    return sorted(rows, key=lambda r: r["trial"])


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
            trial=trial_number(best.trial_id), trial_id=best.trial_id, directory=directory,
            objective=hypermodel.objective.name, score=best.score, path=best_path,
            config_json=stored_configs.to_json(config)))
    return csv_path, best_path, plot(rows, hypermodel.objective.name,
                                     os.path.join(directory, PLOT_FILE))


def plot(rows, objective, path):
    """The objective against λ on a symlog axis, so the λ = 0 baseline shows."""
    plt = results_io.pyplot()
    done = [r for r in rows if r["score"] != ""]
    fig, ax = plt.subplots(figsize=(6, 4))
    # Only the baseline and its pair differ in λ alone; with more than λ searched, the other
    # trials also differ in the other fields, which this axis does not show.
    others = [name for name in rows[0] if "." in name and name != "gp.weight"]
    search_label = "search" + (f" (other fields vary: {', '.join(others)})" if others else "")
    for role, style, label in (("search", "o", search_label),
                               ("paired", "D", "the base config (pair of the baseline)"),
                               ("baseline", "s", "λ = 0 baseline")):
        points = [(r["gp.weight"], r["score"]) for r in done if r["role"] == role]
        if points:
            ax.plot(*zip(*points), style, label=label, mfc="none" if role == "search" and
                    others else None)
    ax.set_xscale("symlog", linthresh=1e-4)
    ax.set_xlabel("λ (gp.weight)")
    ax.set_ylabel(objective)
    if objective.endswith("mse"):
        results_io.log_y(ax)  # plain numbers, not 4.08×10⁻¹
    ax.legend(fontsize="small")
    ax.grid(True, alpha=0.3)
    return results_io.save_figure(fig, path)
