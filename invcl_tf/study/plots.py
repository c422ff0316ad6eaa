"""A study's PNGs: scores against M, the in-training monitor, the robustness sweeps."""

import math

import numpy as np

from invcl_tf import results_io
from invcl_tf.study.statistics import m_order

def _yerr(ses):
    return [0.0 if s is None else s for s in ses]


def _plot_by_m(ax, lines, label, **style):
    for key, by_m in lines:
        ms = sorted(by_m, key=m_order)
        ax.errorbar([float(m) for m in ms], [by_m[m]["mean"] for m in ms],
                    yerr=_yerr(by_m[m]["se"] for m in ms), capsize=3, label=label(key, by_m),
                    **style)


def plot_scores_vs_m(report, path):
    """Test MSE (log-log) or accuracy (log-x) against M, one line per λ, error bars = s.e.;
    the paper's points, made at another scale, on a panel of their own. Returns ``path``,
    or None with nothing to plot."""
    regression = report["task"] == "regression"
    name = "mse" if regression else "accuracy"
    lines = [(k, report["per_weight"][k]["metrics"].get(name)) for k in report["weights"]]
    lines = [(k, by_m) for k, by_m in lines if by_m]
    if not lines:
        return None
    paper = report.get("paper") or {}
    paper_lines = [(k, m.get(name)) for k, m in (paper.get("per_weight") or {}).items()
                   if m.get(name)]
    plt = results_io.pyplot()
    fig, axes = plt.subplots(1, 1 + bool(paper_lines), figsize=(6 + 5 * bool(paper_lines), 4),
                             squeeze=False)
    _plot_by_m(axes[0, 0], lines, marker="o",
               label=lambda key, by_m: f"λ = {key} (n = {max(s['n'] for s in by_m.values())})")
    axes[0, 0].set_title("This study: feature averaging, per λ")
    if paper_lines:
        _plot_by_m(axes[0, 1], paper_lines, marker="s", mfc="none",
                   label=lambda key, by_m: f"λ = {key}")
        axes[0, 1].set_title(f"The paper, at its own scale:\n{paper['label']}",
                             fontsize="medium")
    for ax, drawn in zip(axes[0], (lines, paper_lines)):
        results_io.m_axis(ax, [float(m) for _, by_m in drawn for m in by_m])
        if regression:
            results_io.log_y(ax)
        ax.set_ylabel(f"test {'MSE' if regression else 'accuracy'} (mean ± s.e. over seeds)")
        ax.legend(fontsize="x-small")
        ax.grid(True, which="both", alpha=0.3)
    return results_io.save_figure(fig, path)


def plot_monitor(report, path):
    """The in-training monitor against epoch, mean over seeds per λ (band = ± s.e.), one
    panel per series. Returns ``path``, or None without monitor data."""
    monitor = report.get("monitor")
    if not monitor:
        return None
    # the probe's score first, as the training log prints it
    names = sorted({n for per_key in monitor.values() for n in per_key},
                   key=lambda n: ("probe" not in n, n))
    plt = results_io.pyplot()
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names):
        positive = True
        for key, per_key in monitor.items():
            series = per_key.get(name)
            if not series:
                continue
            mean, se = np.array(series["mean"]), np.array(_yerr(series["se"]))
            ax.plot(series["epoch"], mean, "o-", label=f"λ = {key}")
            ax.fill_between(series["epoch"], mean - se, mean + se, alpha=0.2)
            positive = positive and bool(np.all(mean > 0))
        if positive:
            results_io.log_y(ax)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("epoch")
        ax.set_ylabel(name.replace("monitor_", "").replace("_", " "))
        ax.legend(fontsize="small")
        ax.grid(True, alpha=0.3)
    fig.suptitle("In-training monitor (mean over seeds)")
    return results_io.save_figure(fig, path)


def plot_robustness(report, path):
    """One panel per sweep: the probe's score against the shifted value, per λ (error bars =
    s.e.). Returns ``path``, or None without robustness data."""
    robustness = report.get("robustness")
    if not robustness:
        return None
    metric = "mse" if report["task"] == "regression" else "accuracy"
    sweeps = sorted({s for per_key in robustness.values() for s in per_key})
    plt = results_io.pyplot()
    cols = min(len(sweeps), 2)
    rows = math.ceil(len(sweeps) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.5 * rows), squeeze=False)
    for ax, sweep in zip(axes.flat, sweeps):
        for key, per_key in robustness.items():
            found = per_key.get(sweep) or {}
            points = [(v, s) for v, s in zip(found.get("value", []), found.get(metric, []))
                      if s]
            if points:
                ax.errorbar([v for v, _ in points], [s["mean"] for _, s in points],
                            yerr=_yerr(s["se"] for _, s in points), marker="o", capsize=3,
                            label=f"λ = {key}")
        if metric == "mse":
            results_io.log_y(ax)
        ax.set_title(sweep)
        ax.set_xlabel(results_io.sweep_label(sweep))
        ax.set_ylabel(f"test {metric} (M = 1)")
        ax.legend(fontsize="small")
        ax.grid(True, alpha=0.3)
    for ax in list(axes.flat)[len(sweeps):]:
        ax.axis("off")
    return results_io.save_figure(fig, path)
