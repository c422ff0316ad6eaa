"""Writes evaluation results: JSON, a printed table and PNG plots."""

import json
import os

RESULTS_FILE = "results.json"
PLOT_FILE = "feature_averaging.png"
ROBUSTNESS_FILE = "robustness.json"
ROBUSTNESS_PLOT = "robustness.png"


def _invariance_lines(results):
    return [
        "",
        f"conditional variance of normalised h   {results['conditional_variance']:.4g}",
        f"total variance of normalised h         {results['total_variance']:.4g}",
        f"penalty estimate (unclipped, test)     {results['penalty_estimate']:.4g}",
        f"nuisance MSE from h (baseline {results['nuisance_mse_baseline']:.4f})  "
        f"{results['nuisance_mse']:.4f}",
    ]


def format_table(results):
    """A plain-text table of the probe's scores per M and the invariance metrics."""
    if results["task"] == "unlabelled":
        lines = ["No labels (a flat folder, or no dataset.label_key): the label-free metrics "
                 "only"]
    elif results["task"] == "regression":
        names = list(next(iter(results["mse_per_target"].values())))
        header = f"{'M':>4}  {'MSE':>10}  " + "  ".join(f"{n:>10}" for n in names)
        lines = ["Linear probe, test MSE with features averaged over M views", header,
                 "-" * len(header)]
        for m, value in results["mse"].items():
            per = results["mse_per_target"][m]
            lines.append(f"{m:>4}  {value:10.3e}  " + "  ".join(f"{per[n]:10.3e}"
                                                               for n in names))
        if names == ["m", "b", "sigma", "rfore"]:
            lines.append("(Spirograph's targets: m and b shape the curve, sigma is its "
                         "thickness, rfore the red of its colour)")
    else:
        header = f"{'M':>4}  {'accuracy':>9}  {'x-entropy':>9}  {'colour-only acc':>15}"
        lines = ["Linear probe on the test set, features averaged over M views", header,
                 "-" * len(header)]
        colour = results["color_only"]["accuracy"]
        for m, value in results["accuracy"].items():
            lines.append(f"{m:>4}  {value:9.4f}  {results['cross_entropy'][m]:9.4f}  "
                         f"{colour[m]:15.4f}")
        lines.append(f"untransformed inputs: accuracy "
                     f"{results['untransformed']['accuracy']['1']:.4f}, cross-entropy "
                     f"{results['untransformed']['cross_entropy']['1']:.4f}")
        lines.append("(cross-entropy: the probe's mean negative log-probability of the true "
                     "class, in nats; far above ln(classes), a uniform guess, it is confidently "
                     "wrong: often a probe fitted on few images with little L2)")
    return "\n".join(lines + _invariance_lines(results))


def write_json(obj, path):
    """Writes ``obj`` as JSON to ``path`` through a temporary file and a rename, creating the
    directory if need be."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
    os.replace(tmp, path)


def pyplot():
    """``matplotlib.pyplot`` on the headless Agg backend."""
    import matplotlib  # deferred: only reports need it, and only a headless backend

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_results(results, directory, title=""):
    """Writes ``results.json`` (atomically) and the PNG into ``directory``; returns the paths."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, RESULTS_FILE)
    write_json(results, path)
    if results["task"] == "unlabelled":  # no probe, nothing to plot against M
        return (path,)
    return path, plot_feature_averaging(results, os.path.join(directory, PLOT_FILE), title)


def plot_feature_averaging(results, path, title=""):
    """Saves the probe's test metric against M (log-x): MSE per target, or accuracy."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    if results["task"] == "regression":
        passes = [int(m) for m in results["mse"]]
        ax.plot(passes, list(results["mse"].values()), "o-", color="black", lw=2, label="mean")
        for name in next(iter(results["mse_per_target"].values())):
            ax.plot(passes, [results["mse_per_target"][str(m)][name] for m in passes], ".--",
                    label=name)
        log_y(ax)
        ax.set_ylabel("test MSE")
    else:
        passes = [int(m) for m in results["accuracy"]]
        ax.plot(passes, list(results["accuracy"].values()), "o-", label="crop + flip + colour")
        ax.plot(passes, list(results["color_only"]["accuracy"].values()), "s--",
                label="colour only")
        ax.axhline(results["untransformed"]["accuracy"]["1"], color="gray", ls=":",
                   label="untransformed")
        ax.set_ylabel("test accuracy")
    m_axis(ax, passes)
    ax.set_title(title or "Feature averaging: linear probe on the test set")
    ax.legend(fontsize="small")
    ax.grid(True, which="both", alpha=0.3)
    return save_figure(fig, path)


def log_y(ax):
    """A log y axis whose ticks read as plain numbers (0.004, not 4×10⁻³)."""
    import matplotlib.ticker

    ax.set_yscale("log")
    plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:.3g}")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)


def save_figure(fig, path):
    """Lays out, writes (120 dpi) and closes ``fig``; returns ``path``."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def m_axis(ax, values):
    """A log x axis of M, ticked at the M in ``values`` and labelled 1, 3, 10 (not 10⁰)."""
    ax.set_xscale("log")
    integer_ticks(ax, values)
    ax.set_xlabel("M (views averaged per input)")


def integer_ticks(ax, values):
    """Ticks at the M actually evaluated, labelled 1, 3, 10 rather than 10⁰, 10¹."""
    import matplotlib.ticker

    ax.set_xticks(sorted({int(v) for v in values}))
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def format_robustness(found):
    """A table per sweep: the shifted value and the probe's test scores there."""
    lines = []
    for name, points in found.items():
        metrics = [k for k in points[0] if k not in ("value", "mse_per_target",
                                                     "probe_grad_norm")]
        lines += [f"{name}", f"{'value':>8}  " + "  ".join(f"{m:>13}" for m in metrics)]
        lines += [f"{p['value']:8.3f}  " + "  ".join(f"{p[m]:13.4g}" for m in metrics)
                  for p in points]
        lines.append("")
    return "\n".join(lines)


#: The x axis of each robustness sweep (by name, then by prefix); others share the last.
_SWEEP_AXES = (("color_strength", "colour jitter strength"),
               ("rotation", "rotation range ±v (degrees)"),
               ("shift", "shift range ±v (fraction of the side)"),
               ("rotation_", "rotation range: shift / widening (radians)"),
               ("shift_", "shift ranges: shift / widening (grid units)"),
               ("background_", "background colour ranges (rback, gback, bback; trained on "
                               "U(0, 0.6)): shift / widening v, colour units"),
               ("h_", "range of h (the pen's offset that shapes the curve; trained on "
                      "U(0.5, 2.5)): shift / widening v"),
               ("", "nuisance range: shift / widening (parameter units)"))


def sweep_label(name):
    """The x-axis label of the robustness sweep ``name`` (what its values measure)."""
    return next(label for key, label in _SWEEP_AXES
                if name == key or ((key.endswith("_") or not key) and name.startswith(key)))


def sweep_axes(sweeps):
    """``{x-axis label: [sweep names]}``: sweeps in the same units share an axis."""
    axes = {}
    for name in sorted(sweeps):
        axes.setdefault(sweep_label(name), []).append(name)
    return axes


def write_robustness(found, directory):
    """Writes ``robustness.json`` and a PNG of the probe's metric against each sweep's value
    into ``directory`` (created if need be); returns the paths."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, ROBUSTNESS_FILE)
    write_json(found, path)
    plt = pyplot()
    metric = "mse" if "mse" in next(iter(found.values()))[0] else "accuracy"
    axes = sweep_axes(found)
    fig, panels = plt.subplots(1, len(axes), figsize=(5 * len(axes), 3.8), squeeze=False)
    for ax, (label, names) in zip(panels.flat, axes.items()):
        for name in names:
            points = found[name]
            ax.plot([p["value"] for p in points], [p[metric] for p in points], "o-",
                    label=name)
        ax.set_xlabel(label)
        ax.set_ylabel(f"test {metric} (M = 1)")
        if metric == "mse":
            log_y(ax)
        ax.legend(fontsize="small")
        ax.grid(True, alpha=0.3)
    fig.suptitle("Robustness to test-time nuisance")
    return path, save_figure(fig, os.path.join(directory, ROBUSTNESS_PLOT))
