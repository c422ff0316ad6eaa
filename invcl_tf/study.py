"""A study's report: statistics over seeds per λ, paired differences against λ = 0, the
paper's numbers beside ours, and the files that show them (report.json, README.md, PNGs).

Pure: it reads the dicts the runs wrote (results.json, monitor.json, robustness.json) and
trains nothing, so a report can be rebuilt from a study's directory at any time.
"""

import copy
import math
import os

import numpy as np
import scipy.stats

from invcl_tf import results_io

REPORT_FILE = "report.json"
README_FILE = "README.md"
MSE_PLOT = "mse_vs_m.png"
ACCURACY_PLOT = "accuracy_vs_m.png"
MONITOR_PLOT = "monitor.png"
ROBUSTNESS_PLOT = "robustness.png"

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

# Why the paper's "conditional variance" compares with our total variance (SPEC §5), said in
# the reports themselves: they must not cite a file outside the checkout.
_SPREAD = ("the authors' script reshaped its 10 transformed copies so that the variance ran "
           "over 10 different inputs, which in effect measured the total variance")

# SPEC §6, Spirograph rows (mean ± s.e. over 3 runs), keyed like a report's per-λ metrics so
# that each number can sit beside ours for the same λ. The GP runs used Spirograph's default
# λ = 0.01 (SPEC §1).
PAPER_SPIROGRAPH = {
    "label": "paper (ResNet-18, 50 epochs, 100k targets)",
    "source": "Foster, Pukdee, Rainforth (ICLR 2021), mean ± s.e. over 3 runs",
    "task": "regression",
    "per_weight": {
        "0.0": {"mse": {"1": {"mean": 2.93e-3, "se": 6.8e-5},
                        "30": {"mean": 2.23e-3, "se": 0.03e-3}},
                "total_variance": {"mean": 0.789, "se": None}},
        "0.01": {"mse": {"1": {"mean": 1.95e-3, "se": 3.2e-5},
                         "30": {"mean": 0.957e-3, "se": 0.010e-3}},
                 "total_variance": {"mean": 1.6e-3, "se": None}},
    },
    # GP / no GP per target; SPEC §6 does not say at which M.
    "per_target_ratio": {"m": 0.75, "b": 0.65, "sigma": 0.58, "rfore": 0.12},
    "notes": [("total_variance: published as 'conditional variance' at epoch 50; " + _SPREAD),
              "per_target_ratio: GP / no GP; the M it was measured at is not stated"],
}

# SPEC §6, CIFAR rows, accuracies as fractions (ours are fractions; the paper prints percent).
# The GP runs used CIFAR's default λ = 0.1 (SPEC §1).
PAPER_CIFAR10 = {
    "label": "paper (ResNet-50, 1000 epochs, CIFAR-10)",
    "source": "Foster, Pukdee, Rainforth (ICLR 2021), mean ± s.e. over 3 runs",
    "task": "classification",
    "per_weight": {
        "0.0": {"untransformed": {"accuracy": {"1": {"mean": 0.9304, "se": 0.0004}}},
                "accuracy": {"100": {"mean": 0.9460, "se": 0.0001}},
                "total_variance": {"mean": 0.693, "se": None}},
        "0.1": {"untransformed": {"accuracy": {"1": {"mean": 0.9335, "se": 0.0004}}},
                "accuracy": {"100": {"mean": 0.9483, "se": 0.0003}},
                "total_variance": {"mean": 0.0042, "se": None}},
    },
    "robustness": {"color_strength": {"value": 0.875, "accuracy": {"0.0": 0.9001,
                                                                   "0.1": 0.9096}}},
    "notes": [("total_variance: published as 'conditional variance' at epoch 1000; "
               + _SPREAD)],
}

PAPER_CIFAR100 = {
    "label": "paper (ResNet-50, 1000 epochs, CIFAR-100)",
    "source": "Foster, Pukdee, Rainforth (ICLR 2021), mean ± s.e. over 3 runs",
    "task": "classification",
    "per_weight": {
        "0.0": {"untransformed": {"accuracy": {"1": {"mean": 0.713, "se": 0.0014}}},
                "accuracy": {"100": {"mean": 0.7410, "se": 0.0009}}},
        "0.1": {"untransformed": {"accuracy": {"1": {"mean": 0.722, "se": 0.0006}}},
                "accuracy": {"100": {"mean": 0.7494, "se": 0.0009}}},
    },
    "notes": [],
}


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


def _num(x, digits=4):
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
        return (f"{who}: {phrase} differs by {_num(mean)} from a single paired seed, no "
                "interval: no difference shown at this budget")
    low, high = diff["ci95"]
    interval = f"{_num(mean)} [{_num(low)}, {_num(high)}], 95% interval"
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


def _get(tree, path):
    for name in path:
        if not isinstance(tree, dict) or name not in tree:
            return None
        tree = tree[name]
    return tree


def _stat(per_seed):
    seeds = sorted(per_seed)
    return {**summarize(per_seed[s] for s in seeds),
            "per_seed": {str(s): per_seed[s] for s in seeds}}


def _m_order(m):
    return float(m) if m.replace(".", "", 1).isdigit() else math.inf


def _paired_paths(task, paths):
    """The measurements compared seed by seed, in reading order."""
    main = "mse" if task == "regression" else "accuracy"
    chosen = sorted((p for p in paths if len(p) == 2 and p[0] == main),
                    key=lambda p: _m_order(p[1]))
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
                                key=_m_order):
                    row = {"mse": _ratio(mine["mse"][m], base["mse"][m]),
                           "n": len(_common_seeds(mine["mse"][m], base["mse"][m]))}
                    for name, stat in mine.get("mse_per_target", {}).get(m, {}).items():
                        other = _get(base, ("mse_per_target", m, name))
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


# ----------------------------------------------------------------------------- writing


def _cell(stat):
    """``mean ± s.e. (n)``; a single seed shows its value and n = 1."""
    if not stat or stat.get("mean") is None:
        return "–"
    n = f" ({stat['n']})" if "n" in stat else ""  # the paper's numbers carry no n
    if stat.get("se") is None:
        return _num(stat["mean"]) + n
    return f"{_num(stat['mean'])} ± {_num(stat['se'], 2)}{n}"


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def _paper_metrics(report, key):
    paper = report.get("paper") or {}
    return (paper.get("per_weight") or {}).get(key)


def _score_tables(report):
    """One table per λ: the probe's score at each M (and per target), the paper beside it."""
    lines = []
    regression = report["task"] == "regression"
    paper_label = (report.get("paper") or {}).get("label")
    for key in report["weights"]:
        entry = report["per_weight"][key]
        metrics = entry["metrics"]
        main = metrics.get("mse" if regression else "accuracy")
        if not main:
            continue
        paper = _paper_metrics(report, key)
        ms = sorted(main, key=_m_order)
        if regression:
            targets = list(next(iter(metrics.get("mse_per_target", {}).values()), {}))
            header = ["M", "test MSE"] + targets
            rows = [[m, _cell(main[m])] + [_cell(_get(metrics, ("mse_per_target", m, t)))
                                           for t in targets] for m in ms]
            title = "Test MSE"
        else:
            header = ["M", "accuracy", "cross-entropy", "colour-only accuracy"]
            rows = [[m, _cell(main[m]), _cell(_get(metrics, ("cross_entropy", m))),
                     _cell(_get(metrics, ("color_only", "accuracy", m)))] for m in ms]
            untransformed = _get(metrics, ("untransformed", "accuracy", "1"))
            if untransformed:
                rows.append(["untransformed", _cell(untransformed),
                             _cell(_get(metrics, ("untransformed", "cross_entropy", "1"))),
                             "–"])
            title = "Test accuracy"
        if paper_label:
            header.append(f"{paper_label}")
            name = "mse" if regression else "accuracy"
            for row in rows:
                path = (("untransformed", "accuracy", "1") if row[0] == "untransformed"
                        else (name, row[0]))
                row.append(_cell(_get(paper, path)) if paper else "–")
            extra = [m for m in sorted((paper or {}).get(name, {}), key=_m_order)
                     if m not in main]
            for m in extra:  # the paper's M that this study did not evaluate
                rows.append([m] + ["–"] * (len(header) - 2) + [_cell(paper[name][m])])
        seeds = ", ".join(str(s) for s in entry["seeds"])
        lines += [f"### {title}, λ = {key} (seeds {seeds})", ""] + _table(header, rows) + [""]
    return lines


_VARIANCE_SENTENCE = (
    "The conditional variance is the spread of the normalised representation ĥ over "
    "eval.variance_copies transformations of the same input, what the penalty targets; the "
    "total variance is its spread over all test inputs and transformations together, which "
    "is what the authors' script measured and published as \"conditional variance\" (its "
    "10 copies, reshaped, ran over 10 different inputs), so only the total variance compares "
    "with the paper's numbers.")


def _invariance_table(report):
    columns = [("conditional_variance", "conditional variance"),
               ("total_variance", "total variance")]
    header = ["λ"] + [c[1] for c in columns]
    paper_label = (report.get("paper") or {}).get("label")
    if paper_label:
        header.append(f"{paper_label}, \"conditional variance\" (= total variance)")
    header += ["penalty estimate", "nuisance MSE", "nuisance baseline (prior variance)"]
    rows = []
    for key in report["weights"]:
        metrics = report["per_weight"][key]["metrics"]
        row = [key] + [_cell(metrics.get(name)) for name, _ in columns]
        if paper_label:
            row.append(_cell(_get(_paper_metrics(report, key), ("total_variance",))))
        row += [_cell(metrics.get(n)) for n in
                ("penalty_estimate", "nuisance_mse", "nuisance_mse_baseline")]
        rows.append(row)
    return _table(header, rows)


def _ratio_table(report):
    ratios = report.get("ratios")
    if not ratios or not ratios["per_weight"]:
        return []
    targets = list(ratios.get("paper") or {})
    for table in ratios["per_weight"].values():
        for row in table.values():
            targets += [t for t in row if t not in ("mse", "n") and t not in targets]
    rows = [[key, m, row.get("n", "–"), _num(row.get("mse"))] + [_num(row.get(t))
                                                                  for t in targets]
            for key, table in ratios["per_weight"].items() for m, row in table.items()]
    if ratios.get("paper"):
        rows.append([ratios.get("paper_label") or "paper", "not stated", 3, "–"]
                    + [_num(ratios["paper"].get(t)) for t in targets])
    return (["## Per-target MSE ratio, λ / λ = 0", "",
             (f"Mean at λ divided by the mean at λ = {report['baseline']}, both over the n "
              "seeds that finished at both (below 1: the penalty helps)."), ""]
            + _table(["λ", "M", "n", "test MSE"] + targets, rows) + [""])


def _paired_section(report):
    paired = report.get("paired_differences") or {}
    if not any(paired.values()):
        return ["## Paired differences", "",
                "None: the study has no λ = 0 runs, or none at another λ, that finished.", ""]
    lines = ["## Paired differences, λ minus λ = 0, seed by seed", "",
             "Only seeds that finished at both λ; 95% t-interval on n − 1 degrees of freedom.",
             ""]
    rows, sentences = [], []
    for key, diffs in paired.items():
        for diff in diffs.values():
            interval = ("–" if diff["ci95"] is None
                        else f"[{_num(diff['ci95'][0])}, {_num(diff['ci95'][1])}]")
            rows.append([key, diff["label"], diff["n"], _num(diff["mean"]), _num(diff["se"], 2),
                         interval])
            sentences.append(f"- {diff['sentence']}.")
        if not diffs:
            sentences.append(f"- λ = {key}: no seed finished at both λ = {key} and "
                             f"λ = {report['baseline']}, so there is no paired difference.")
    return (lines + _table(["λ", "measurement", "seeds", "mean difference", "s.e.",
                            "95% interval"], rows) + [""] + sentences + [""])


def _paper_section(report):
    paper = report.get("paper")
    if not paper:
        return []
    keys = list(paper.get("per_weight", {}))
    paths = []
    for key in keys:
        for path in _stat_paths(paper["per_weight"][key]):
            if path not in paths:
                paths.append(path)
    rows = [["/".join(p)] + [_cell(_get(paper["per_weight"][k], p)) for k in keys]
            for p in paths]
    for sweep, point in (paper.get("robustness") or {}).items():
        for metric, by_key in point.items():
            if metric != "value":
                rows.append([f"robustness: {metric} at {sweep} = {point['value']}"]
                            + [_num(by_key.get(k)) for k in keys])
    if paper.get("per_target_ratio"):
        rows.append(["per-target MSE ratio GP / no GP", ", ".join(
            f"{t} {_num(v)}" for t, v in paper["per_target_ratio"].items())] + [""] *
            (len(keys) - 1))
    lines = [f"## The paper's numbers: {paper['label']}", "",
             f"{paper.get('source', '')}; at the paper's scale, not this study's.", ""]
    lines += _table(["measurement"] + [f"λ = {k}" for k in keys], rows) + [""]
    return lines + [f"- {note}" for note in paper.get("notes", [])] + [""]


def _stat_paths(tree, path=()):
    if "mean" in tree:
        return [path]
    return [p for name, child in tree.items() if isinstance(child, dict)
            for p in _stat_paths(child, path + (name,))]


def format_readme(report, meta, plots=()):
    """The study's README.md text: the tables, the sentences, the failed runs, the plots."""
    title = meta.get("config_name") or "study"
    counts = {s: sum(r["status"] == s for r in report["runs"]) for s in STATUSES}
    lines = [f"# Study report: {title}", "",
             (f"{len(report['runs'])} runs ({counts['done']} done, {counts['failed']} failed, "
             f"{counts['diverged']} diverged) over λ ∈ {{{', '.join(report['weights'])}}} and "
             f"seeds {', '.join(str(s) for s in report['seeds'])}. Cells are mean ± standard "
             "error (n seeds); s.e. = sample standard deviation (ddof 1) / √n, shown only "
             "for n ≥ 2."), ""]
    shown = dict(meta)
    wall = shown.pop("wall_time_s", None)
    invocations = shown.pop("invocations", None) or []
    rows = [[name, f"`{value}`" if name == "command" else value]
            for name, value in shown.items()]
    if wall is not None:
        rows.append(["wall time", f"{float(wall):.0f} s ({float(wall) / 3600:.2f} h)"])
    for i, call in enumerate(invocations, 1):
        what = "trained runs" if call.get("trained") else "report only"
        where = ", ".join(str(call[k]) for k in ("commit", "at") if call.get(k))
        rows.append([f"invocation {i}", f"`{call['command']}` ({where}; {what})"
                     if "trained" in call else f"`{call['command']}` ({where})"])
    lines += _table(["run", "value"], rows) + [""]
    if report["task"] in ("regression", "classification"):
        lines += ["## The linear probe's test scores", ""] + _score_tables(report)
    lines += ["## Invariance and nuisance", "", _VARIANCE_SENTENCE, ""]
    lines += _invariance_table(report) + [""]
    lines += _ratio_table(report) + _paired_section(report) + _paper_section(report)
    lines += ["## Failed and diverged runs", ""]
    if report["excluded"]:
        lines += ["Left out of every statistic above.", ""]
        lines += _table(["seed", "λ", "status", "reason"],
                        [[r["seed"], r["weight_key"], r["status"], r["reason"] or ""]
                         for r in report["excluded"]]) + [""]
    else:
        lines += ["None: every run finished.", ""]
    if plots:
        lines += ["## Plots", ""] + [f"![{os.path.basename(p)}]({os.path.basename(p)})"
                                     for p in plots] + [""]
    return "\n".join(lines)


def _write_text(path, text):
    # README holds λ, ± and −: UTF-8 whatever the locale; a rename so no reader sees half.
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _yerr(ses):
    return [0.0 if s is None else s for s in ses]


def _plot_by_m(ax, lines, label, **style):
    for key, by_m in lines:
        ms = sorted(by_m, key=_m_order)
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
    plt = results_io._pyplot()
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
        ax.set_xscale("log")
        results_io.integer_ticks(ax, [float(m) for _, by_m in drawn for m in by_m])
        if regression:
            results_io.log_y(ax)
        ax.set_xlabel("M (views averaged per input)")
        ax.set_ylabel(f"test {'MSE' if regression else 'accuracy'} (mean ± s.e. over seeds)")
        ax.legend(fontsize="x-small")
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_monitor(report, path):
    """The in-training monitor against epoch, mean over seeds per λ (band = ± s.e.), one
    panel per series. Returns ``path``, or None without monitor data."""
    monitor = report.get("monitor")
    if not monitor:
        return None
    # the probe's score first, as the training log prints it
    names = sorted({n for per_key in monitor.values() for n in per_key},
                   key=lambda n: ("probe" not in n, n))
    plt = results_io._pyplot()
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
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_robustness(report, path):
    """One panel per sweep: the probe's score against the shifted value, per λ (error bars =
    s.e.). Returns ``path``, or None without robustness data."""
    robustness = report.get("robustness")
    if not robustness:
        return None
    metric = "mse" if report["task"] == "regression" else "accuracy"
    sweeps = sorted({s for per_key in robustness.values() for s in per_key})
    plt = results_io._pyplot()
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
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


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
    _write_text(readme, format_readme(report, meta, plots))
    return [json_path, readme] + plots
