"""A study's report from its runs' results: ``statistics`` (over seeds, paired against
λ = 0), ``report_text`` (README.md), ``plots`` (PNGs) and ``paper`` (the published numbers);
``write_report`` writes them all. Trains nothing, so a report can be rebuilt at any time.
"""

import os

from invcl_tf import results_io
from invcl_tf.study.paper import PAPER_CIFAR10, PAPER_CIFAR100, PAPER_SPIROGRAPH
from invcl_tf.study.plots import plot_monitor, plot_robustness, plot_scores_vs_m
from invcl_tf.study.report_text import format_readme, write_text
from invcl_tf.study.statistics import STATUSES, aggregate, paired_difference, summarize, weight_key

__all__ = ["PAPER_CIFAR10", "PAPER_CIFAR100", "PAPER_SPIROGRAPH", "STATUSES", "aggregate",
           "format_readme", "paired_difference", "plot_monitor", "plot_robustness",
           "plot_scores_vs_m", "summarize", "weight_key", "write_report"]

REPORT_FILE = "report.json"
README_FILE = "README.md"
MSE_PLOT = "mse_vs_m.png"
ACCURACY_PLOT = "accuracy_vs_m.png"
MONITOR_PLOT = "monitor.png"
ROBUSTNESS_PLOT = "robustness.png"


def write_report(report, directory, meta):
    """Writes ``report.json`` (atomically, with ``meta``), ``README.md`` and the PNGs into
    ``directory``; returns the paths written. ``meta`` (``command``, ``commit``, ``machine``,
    ``wall_time_s``, ``config_name``, ...) is shown at the top of the README. A report
    without monitor or robustness data writes no such PNG."""
    os.makedirs(directory, exist_ok=True)
    plot_name = MSE_PLOT if report["task"] == "regression" else ACCURACY_PLOT
    plots = [p for p in (
        plot_scores_vs_m(report, os.path.join(directory, plot_name))
        if report["task"] in ("regression", "classification") else None,
        plot_monitor(report, os.path.join(directory, MONITOR_PLOT)),
        plot_robustness(report, os.path.join(directory, ROBUSTNESS_PLOT))) if p]
    json_path = os.path.join(directory, REPORT_FILE)
    results_io.write_json({**report, "meta": dict(meta)}, json_path)
    readme = os.path.join(directory, README_FILE)
    write_text(readme, format_readme(report, meta, plots))
    return [json_path, readme] + plots
