"""A study's statistics: per-λ mean ± s.e. over seeds, paired differences against λ = 0 with
t-intervals, the monitor's and sweeps' curves, per-target ratios.

Pure: it reads the dicts the runs wrote (results.json, monitor.json, robustness.json) and
trains nothing, so a report can be rebuilt from a study's directory at any time.
"""

import copy
import math

import numpy as np
import scipy.stats

STATUSES = ("done", "failed", "diverged")

# The results.json entries that are measurements; sizes, M lists and flags are not.
_METRIC_KEYS = ("mse", "mse_per_target", "accuracy", "cross_entropy", "untransformed",
                "color_only", "conditional_variance", "total_variance", "penalty_estimate",
                "nuisance_mse", "nuisance_mse_baseline")
# The logistic probe's final gradient norm says how well L-BFGS converged, not how good the
# representation is: averaging it over seeds would only clutter the report.
_NOT_METRICS = ("probe_grad_norm",)
# Compared seed by seed against λ = 0, beside the probe's score at every M.
_PAIRED_SCALARS = ("conditional_variance", "total_variance", "penalty_estimate", "nuisance_mse")
_PHRASES = {"conditional_variance": "the conditional variance",
            "total_variance": "the total variance",
            "penalty_estimate": "the penalty estimate",
            "nuisance_mse": "the nuisance MSE"}


def weight_key(weight):
    """The string a λ is keyed by in a report: the float's ``repr`` (exact, so two different
    λ never share a key; ``0`` and ``-0.0`` both give ``"0.0"``)."""
    return repr(float(weight) + 0.0)  # + 0.0 turns -0.0 into 0.0


def summarize(values):
    """``{"mean", "se", "n"}`` of ``values``: s.e. = sample std (ddof 1) / √n, None for n < 2."""
    x = np.asarray(list(values), dtype=np.float64)
    n = int(x.size)
    return {"mean": float(np.mean(x)) if n else None,
            "se": float(np.std(x, ddof=1) / math.sqrt(n)) if n >= 2 else None,
            "n": n}


def paired_difference(treated, baseline):
    """Seed-by-seed ``treated − baseline`` over the seeds in both ``{seed: value}`` dicts.

    Returns the seeds, the differences, their mean, s.e. and n, and the 95% t-interval
    ``mean ± t.ppf(0.975, n − 1) · s.e.`` (what ``scipy.stats.ttest_rel`` gives), with
    ``excludes_zero``; interval and verdict are None below two common seeds.
    """
    seeds = sorted(set(treated) & set(baseline))
    diffs = [float(treated[s]) - float(baseline[s]) for s in seeds]
    found = {"seeds": seeds, "differences": {str(s): d for s, d in zip(seeds, diffs)},
             **summarize(diffs), "ci95": None, "excludes_zero": None}
    if found["n"] >= 2:
        half = float(scipy.stats.t.ppf(0.975, found["n"] - 1)) * found["se"]
        low, high = found["mean"] - half, found["mean"] + half
        found["ci95"] = [low, high]
        found["excludes_zero"] = bool(low > 0.0 or high < 0.0)
    return found


def fmt(x, digits=4):
    """``digits`` significant digits with a true minus sign, for prose and tables (four:
    the paper's accuracies differ in the fourth)."""
    if x is None:
        return "–"
    if not math.isfinite(x):
        return str(x)
    return ("−" if x < 0 else "") + f"{abs(x):.{digits}g}"


def difference_sentence(diff, phrase, key, baseline_key):
    """One plain sentence on a paired difference: its direction, estimate, interval and
    whether the 95% interval excludes zero."""
    who = f"the penalty (λ = {key} against λ = {baseline_key})"
    if diff["n"] == 0:
        return f"{who}: no seed finished at both λ, so {phrase} has no paired difference"
    mean = diff["mean"]
    if diff["ci95"] is None:
        return (f"{who}: {phrase} differs by {fmt(mean)} from a single paired seed, no "
                "interval: no difference shown at this budget")
    low, high = diff["ci95"]
    interval = f"{fmt(mean)} [{fmt(low)}, {fmt(high)}], 95% interval"
    if diff["excludes_zero"]:  # only then a direction: the interval shows one
        verb = "raises" if mean > 0 else "lowers"
        return f"{who} {verb} {phrase}: {interval} excludes zero"
    if mean == 0:
        return f"{who} does not change {phrase}: {interval} includes zero"
    return (f"{who}: {phrase} differs by {interval} includes zero: no difference shown at "
            "this budget")


def _leaves(results):
    """``{path: value}`` for every measurement in a results.json dict (path: tuple of keys)."""
    found = {}

    def walk(path, node):
        if isinstance(node, dict):
            for name, child in node.items():
                if name not in _NOT_METRICS:
                    walk(path + (str(name),), child)
        elif node is None or (isinstance(node, (int, float)) and not isinstance(node, bool)):
            found[path] = None if node is None else float(node)

    for key in _METRIC_KEYS:
        if key in results:
            walk((key,), results[key])
    return found


def _finite(value):
    return value is not None and math.isfinite(value)


def _screen(run):
    """``(status, reason)``: a run counts only if it finished with every measurement finite."""
    status = run.get("status")
    if status not in STATUSES:
        raise ValueError(f"run seed={run.get('seed')} weight={run.get('weight')}: status "
                         f"{status!r} is not one of {', '.join(STATUSES)}")
    if status != "done":
        return status, run.get("reason") or f"the run {status}"
    if not run.get("results"):
        return "failed", run.get("reason") or "finished without results"
    bad = ["/".join(p) for p, v in _leaves(run["results"]).items() if not _finite(v)]
    if bad:  # NaN in the evaluation means the representation blew up: a divergence
        more = f" and {len(bad) - 4} more" if len(bad) > 4 else ""
        return "diverged", "non-finite " + ", ".join(bad[:4]) + more
    return "done", None


def _put(tree, path, value):
    for name in path[:-1]:
        tree = tree.setdefault(name, {})
    tree[path[-1]] = value


def lookup(tree, path):
    for name in path:
        if not isinstance(tree, dict) or name not in tree:
            return None
        tree = tree[name]
    return tree


def _stat(per_seed):
    seeds = sorted(per_seed)
    return {**summarize(per_seed[s] for s in seeds),
            "per_seed": {str(s): per_seed[s] for s in seeds}}


def m_order(m):
    return float(m) if m.replace(".", "", 1).isdigit() else math.inf


def _paired_paths(task, paths):
    """The measurements compared seed by seed, in reading order."""
    main = "mse" if task == "regression" else "accuracy"
    chosen = sorted((p for p in paths if len(p) == 2 and p[0] == main),
                    key=lambda p: m_order(p[1]))
    if ("untransformed", "accuracy", "1") in paths:
        chosen.append(("untransformed", "accuracy", "1"))
    return chosen + [(name,) for name in _PAIRED_SCALARS if (name,) in paths]


def _phrase(path):
    if path[0] == "mse":
        return f"the test MSE at M={path[1]}"
    if path[0] == "accuracy":
        return f"the test accuracy at M={path[1]}"
    if path == ("untransformed", "accuracy", "1"):
        return "the test accuracy on untransformed inputs"
    return _PHRASES.get(path[0], " ".join(path))


def _series_summary(runs):
    """Monitor curves: per series, the mean, s.e. and n over seeds at each epoch."""
    points = {}
    for run in runs:
        monitor = run.get("monitor") or {}
        epochs = monitor.get("epoch") or []
        for name, series in monitor.items():
            if name == "epoch" or not isinstance(series, list):
                continue
            for epoch, value in zip(epochs, series):
                if value is not None and math.isfinite(value):
                    points.setdefault(name, {}).setdefault(int(epoch), []).append(float(value))
    found = {}
    for name, by_epoch in points.items():
        epochs = sorted(by_epoch)
        stats = [summarize(by_epoch[e]) for e in epochs]
        found[name] = {"epoch": epochs, "mean": [s["mean"] for s in stats],
                       "se": [s["se"] for s in stats], "n": [s["n"] for s in stats]}
    return found


def _robustness_summary(runs):
    """Per sweep: the shifted values and, at each, the statistics of every scalar score."""
    points = {}
    for run in runs:
        for sweep, rows in (run.get("robustness") or {}).items():
            for row in rows:
                for name, value in row.items():
                    if (name == "value" or name in _NOT_METRICS
                            or not isinstance(value, (int, float)) or not math.isfinite(value)):
                        continue
                    (points.setdefault(sweep, {}).setdefault(name, {})
                     .setdefault(float(row["value"]), {})[int(run["seed"])]) = float(value)
    found = {}
    for sweep, metrics in points.items():
        values = sorted({v for per_value in metrics.values() for v in per_value})
        found[sweep] = {"value": values}
        for name, per_value in metrics.items():
            found[sweep][name] = [_stat(per_value[v]) if v in per_value else None
                                  for v in values]
    return found


def aggregate(runs, paper=None):
    """The report.json dict of a study from its runs.

    ``runs``: ``[{"seed", "weight", "status": "done"|"failed"|"diverged", "results",
    "monitor", "robustness"}]`` (an optional ``"reason"`` says why a run failed). Only runs
    that are done with finite results count; the others are listed in ``"excluded"`` (a done
    run with a NaN measurement is listed as diverged). Per λ (``weight_key``) and measurement:
    mean, s.e., n and per-seed values; per-target MSE ratios against λ = 0; paired differences
    against λ = 0 with 95% t-intervals and a sentence each; monitor and robustness curves; and
    ``paper`` (e.g. ``PAPER_SPIROGRAPH``) under ``"paper"``.
    """
    seen, runs_out, included = set(), [], {}
    for run in runs:
        key = weight_key(run["weight"])
        if (run["seed"], key) in seen:  # two runs for one cell would silently weight a seed
            raise ValueError(f"two runs for seed {run['seed']} at λ = {key}")
        seen.add((run["seed"], key))
        status, reason = _screen(run)
        runs_out.append({"seed": int(run["seed"]), "weight": float(key),
                         "weight_key": key, "status": status, "reason": reason})
        included.setdefault(key, [])
        if status == "done":
            included[key].append(run)
    keys = sorted(included, key=float)
    tasks = {r["results"].get("task") for k in keys for r in included[k]} - {None}
    if len(tasks) > 1:
        raise ValueError(f"runs of different tasks in one study: {sorted(tasks)}")
    task = tasks.pop() if tasks else None

    values = {}  # key -> path -> seed -> value
    per_weight = {}
    for key in keys:
        values[key] = {}
        for run in included[key]:
            for path, value in _leaves(run["results"]).items():
                values[key].setdefault(path, {})[int(run["seed"])] = value
        metrics = {}
        for path, per_seed in values[key].items():
            _put(metrics, path, _stat(per_seed))
        per_weight[key] = {"weight": float(key),
                           "seeds": sorted(int(r["seed"]) for r in included[key]),
                           "metrics": metrics}

    baseline = "0.0" if "0.0" in per_weight and per_weight["0.0"]["seeds"] else None
    treated = [k for k in keys if k != "0.0" and per_weight[k]["seeds"]]
    ratios, paired = None, {}
    if baseline is not None:
        base = per_weight[baseline]["metrics"]
        if task == "regression":
            ratios = {"per_weight": {}, "paper": None, "paper_label": None}
            if paper and paper.get("per_target_ratio"):
                ratios["paper"] = dict(paper["per_target_ratio"])
                ratios["paper_label"] = paper.get("label")
            for key in treated:
                mine = per_weight[key]["metrics"]
                table = {}
                for m in sorted(set(mine.get("mse", {})) & set(base.get("mse", {})),
                                key=m_order):
                    row = {"mse": _ratio(mine["mse"][m], base["mse"][m]),
                           "n": len(_common_seeds(mine["mse"][m], base["mse"][m]))}
                    for name, stat in mine.get("mse_per_target", {}).get(m, {}).items():
                        other = lookup(base, ("mse_per_target", m, name))
                        row[name] = _ratio(stat, other)
                    table[m] = row
                ratios["per_weight"][key] = table
        for key in treated:
            paths = set(values[key]) & set(values[baseline])
            paired[key] = {}
            for path in _paired_paths(task, paths):
                diff = paired_difference(values[key][path], values[baseline][path])
                if diff["n"] == 0:  # no common seed: nothing to compare, said once in README
                    continue
                diff["label"] = _phrase(path)
                diff["sentence"] = difference_sentence(diff, diff["label"], key, baseline)
                paired[key]["/".join(path)] = diff

    monitor = {k: s for k in keys if (s := _series_summary(included[k]))}
    robustness = {k: s for k in keys if (s := _robustness_summary(included[k]))}
    return {
        "task": task,
        "weights": keys,
        "baseline": baseline,
        "seeds": sorted({r["seed"] for r in runs_out}),
        "runs": runs_out,
        "excluded": [r for r in runs_out if r["status"] != "done"],
        "per_weight": per_weight,
        "ratios": ratios,
        "paired_differences": paired,
        "monitor": monitor or None,
        "robustness": robustness or None,
        "paper": copy.deepcopy(paper) if paper else None,
    }


def _common_seeds(stat, base):
    return sorted(set(stat["per_seed"]) & set((base or {}).get("per_seed", {})))


def _ratio(stat, base):
    """Mean at λ over mean at λ = 0, both over the seeds that finished at both: a seed that
    diverged at one λ must not leave the other's mean over more seeds."""
    seeds = _common_seeds(stat, base)
    if not seeds:
        return None
    below = float(np.mean([base["per_seed"][s] for s in seeds]))
    return float(np.mean([stat["per_seed"][s] for s in seeds])) / below if below else None
