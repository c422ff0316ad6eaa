"""A study's README.md: tables of the statistics, the paired-difference sentences, the
paper's numbers in a section of their own, the failed runs and the plots."""

import os

from invcl_tf.study.statistics import STATUSES, fmt, lookup, m_order

def _cell(stat):
    """``mean ± s.e. (n)``; a single seed shows its value and n = 1."""
    if not stat or stat.get("mean") is None:
        return "–"
    n = f" ({stat['n']})" if "n" in stat else ""  # the paper's numbers carry no n
    if stat.get("se") is None:
        return fmt(stat["mean"]) + n
    return f"{fmt(stat['mean'])} ± {fmt(stat['se'], 2)}{n}"


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
        ms = sorted(main, key=m_order)
        if regression:
            targets = list(next(iter(metrics.get("mse_per_target", {}).values()), {}))
            header = ["M", "test MSE"] + targets
            rows = [[m, _cell(main[m])] + [_cell(lookup(metrics, ("mse_per_target", m, t)))
                                           for t in targets] for m in ms]
            title = "Test MSE"
        else:
            header = ["M", "accuracy", "cross-entropy", "colour-only accuracy"]
            rows = [[m, _cell(main[m]), _cell(lookup(metrics, ("cross_entropy", m))),
                     _cell(lookup(metrics, ("color_only", "accuracy", m)))] for m in ms]
            untransformed = lookup(metrics, ("untransformed", "accuracy", "1"))
            if untransformed:
                rows.append(["untransformed", _cell(untransformed),
                             _cell(lookup(metrics, ("untransformed", "cross_entropy", "1"))),
                             "–"])
            title = "Test accuracy"
        if paper_label:
            header.append(f"{paper_label}")
            name = "mse" if regression else "accuracy"
            for row in rows:
                path = (("untransformed", "accuracy", "1") if row[0] == "untransformed"
                        else (name, row[0]))
                row.append(_cell(lookup(paper, path)) if paper else "–")
            extra = [m for m in sorted((paper or {}).get(name, {}), key=m_order)
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
            row.append(_cell(lookup(_paper_metrics(report, key), ("total_variance",))))
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
    rows = [[key, m, row.get("n", "–"), fmt(row.get("mse"))] + [fmt(row.get(t))
                                                                  for t in targets]
            for key, table in ratios["per_weight"].items() for m, row in table.items()]
    if ratios.get("paper"):
        rows.append([ratios.get("paper_label") or "paper", "not stated", 3, "–"]
                    + [fmt(ratios["paper"].get(t)) for t in targets])
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
                        else f"[{fmt(diff['ci95'][0])}, {fmt(diff['ci95'][1])}]")
            rows.append([key, diff["label"], diff["n"], fmt(diff["mean"]), fmt(diff["se"], 2),
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
    rows = [["/".join(p)] + [_cell(lookup(paper["per_weight"][k], p)) for k in keys]
            for p in paths]
    for sweep, point in (paper.get("robustness") or {}).items():
        for metric, by_key in point.items():
            if metric != "value":
                rows.append([f"robustness: {metric} at {sweep} = {point['value']}"]
                            + [fmt(by_key.get(k)) for k in keys])
    if paper.get("per_target_ratio"):
        rows.append(["per-target MSE ratio GP / no GP", ", ".join(
            f"{t} {fmt(v)}" for t, v in paper["per_target_ratio"].items())] + [""] *
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


def write_text(path, text):
    # README holds λ, ± and −: UTF-8 whatever the locale; a rename so no reader sees half.
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
