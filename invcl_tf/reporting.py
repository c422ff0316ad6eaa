"""Writes evaluation results: ``results.json``, a printed table and a PNG of MSE against M."""

import json
import os

RESULTS_FILE = "results.json"
PLOT_FILE = "mse_vs_passes.png"


def format_table(results):
    """A plain-text table of test MSE per M (overall and per target) and the invariance metrics."""
    names = list(next(iter(results["mse_per_target"].values())))
    header = f"{'M':>4}  {'MSE':>10}  " + "  ".join(f"{n:>10}" for n in names)
    lines = ["Linear probe, test MSE with features averaged over M views", header,
             "-" * len(header)]
    for m, value in results["mse"].items():
        per = results["mse_per_target"][m]
        lines.append(f"{m:>4}  {value:10.3e}  " + "  ".join(f"{per[n]:10.3e}" for n in names))
    lines += [
        "",
        f"conditional variance of normalised h   {results['conditional_variance']:.4g}",
        f"total variance of normalised h         {results['total_variance']:.4g}",
        f"penalty estimate (unclipped, test)     {results['penalty_estimate']:.4g}",
        f"nuisance MSE from h (baseline {results['nuisance_mse_baseline']:.4f})  "
        f"{results['nuisance_mse']:.4f}",
    ]
    return "\n".join(lines)


def write_results(results, directory, title=""):
    """Writes ``results.json`` (atomically) and the PNG into ``directory``; returns their paths."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, RESULTS_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(results, f, indent=2, sort_keys=True)
    os.replace(tmp, path)
    return path, plot_mse(results, os.path.join(directory, PLOT_FILE), title)


def plot_mse(results, path, title=""):
    """Saves test MSE (overall and per target) against M on log axes."""
    import matplotlib  # deferred: only evaluation needs it, and only a headless backend

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    passes = [int(m) for m in results["mse"]]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(passes, list(results["mse"].values()), "o-", color="black", lw=2, label="mean")
    names = list(next(iter(results["mse_per_target"].values())))
    for name in names:
        ax.plot(passes, [results["mse_per_target"][str(m)][name] for m in passes], ".--",
                label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("M (views averaged per input)")
    ax.set_ylabel("test MSE")
    ax.set_title(title or "Feature averaging: linear-probe test MSE")
    ax.legend(fontsize="small")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
