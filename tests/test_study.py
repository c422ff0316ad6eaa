"""The study report: statistics over seeds, paired differences, ratios, excluded runs, files.

Every expected number is computed here with NumPy / SciPy from the made-up results, never by
calling the code under test.
"""

import json
import math
import os

import numpy as np
import pytest
import scipy.stats

from invcl_tf import study

TARGETS = ("m", "b", "sigma", "rfore")
MS = ("1", "3", "10")


def spirograph_results(rng, scale=1.0):
    """A results.json dict as eval_protocol.evaluate writes it for Spirograph."""
    per_target = {m: {t: float(scale * rng.uniform(0.5, 1.5) * 1e-2 / int(m) ** 0.3)
                      for t in TARGETS} for m in MS}
    return {"mse": {m: float(np.mean(list(per_target[m].values()))) for m in MS},
            "mse_per_target": per_target,
            "conditional_variance": float(scale * rng.uniform(1e-3, 1e-2)),
            "total_variance": float(scale * rng.uniform(0.1, 0.5)),
            "penalty_estimate": float(scale * rng.uniform(1.0, 30.0)),
            "nuisance_mse": float(rng.uniform(0.03, 0.06)),
            "nuisance_mse_baseline": 0.0807,
            "num_probe_train": 100, "probe_inputs": "fresh", "num_test": 50,
            "num_passes": [int(m) for m in MS], "task": "regression"}


def run(seed, weight, results, status="done", monitor=None, robustness=None):
    return {"seed": seed, "weight": weight, "status": status, "results": results,
            "monitor": monitor, "robustness": robustness}


def grid(cells, seed=0):
    """``{(seed, weight): results}`` for the given cells, each from its own random draw."""
    rng = np.random.default_rng(seed)
    return {cell: spirograph_results(rng, scale=1.0 if cell[1] == 0 else 0.6) for cell in cells}


def values(table, weight, path, seeds):
    out = []
    for s in seeds:
        node = table[(s, weight)]
        for name in path:
            node = node[name]
        out.append(node)
    return np.array(out)


def test_mean_and_standard_error_for_three_two_and_one_seeds():
    cells = [(0, 0.0), (1, 0.0), (2, 0.0), (0, 0.01), (1, 0.01), (0, 0.1)]
    table = grid(cells)
    report = study.aggregate([run(s, w, r) for (s, w), r in table.items()])
    assert report["weights"] == ["0.0", "0.01", "0.1"] and report["task"] == "regression"
    for weight, seeds in ((0.0, [0, 1, 2]), (0.01, [0, 1]), (0.1, [0])):
        metrics = report["per_weight"][repr(weight)]["metrics"]
        assert report["per_weight"][repr(weight)]["seeds"] == seeds
        paths = ([("mse", m) for m in MS] + [("mse_per_target", m, t) for m in MS
                                             for t in TARGETS]
                 + [(n,) for n in ("conditional_variance", "total_variance",
                                   "penalty_estimate", "nuisance_mse")])
        for path in paths:
            x = values(table, weight, path, seeds)
            stat = metrics
            for name in path:
                stat = stat[name]
            assert stat["n"] == len(seeds)
            assert stat["mean"] == pytest.approx(np.mean(x), rel=1e-12)
            if len(seeds) == 1:
                assert stat["se"] is None
            else:
                assert stat["se"] == pytest.approx(scipy.stats.sem(x), rel=1e-12)
                assert stat["se"] == pytest.approx(np.std(x, ddof=1) / np.sqrt(len(x)))
            assert stat["per_seed"] == {str(s): v for s, v in zip(seeds, x)}
    # a size or a flag is not a measurement
    assert "num_test" not in report["per_weight"]["0.0"]["metrics"]


def _set_mse(results, m, value):
    results["mse"][m] = value
    return results


def test_paired_difference_uses_only_common_seeds_and_the_t_interval():
    base = {0: 0.030, 1: 0.022, 2: 0.027, 3: 0.025}
    treated = {1: 0.018, 2: 0.021, 3: 0.019, 4: 0.050}
    table = grid([(s, 0.0) for s in base] + [(s, 0.01) for s in treated])
    for s, v in base.items():
        _set_mse(table[(s, 0.0)], "1", v)
    for s, v in treated.items():
        _set_mse(table[(s, 0.01)], "1", v)
    lonely = grid([(9, 0.1)])[(9, 0.1)]  # a λ whose only seed has no λ = 0 partner
    report = study.aggregate([run(s, w, r) for (s, w), r in table.items()]
                             + [run(9, 0.1, lonely)])
    assert report["paired_differences"]["0.1"] == {}
    diff = report["paired_differences"]["0.01"]["mse/1"]
    common = [1, 2, 3]
    d = np.array([treated[s] - base[s] for s in common])
    se = np.std(d, ddof=1) / np.sqrt(3)
    half = scipy.stats.t.ppf(0.975, 2) * se
    assert diff["seeds"] == common and diff["n"] == 3
    assert diff["mean"] == pytest.approx(d.mean(), rel=1e-12)
    assert diff["se"] == pytest.approx(se, rel=1e-12)
    assert diff["ci95"] == pytest.approx([d.mean() - half, d.mean() + half], rel=1e-12)
    # the same interval as a paired t-test's
    ci = scipy.stats.ttest_rel([treated[s] for s in common],
                               [base[s] for s in common]).confidence_interval(0.95)
    assert diff["ci95"] == pytest.approx([ci.low, ci.high], rel=1e-9)
    assert diff["differences"] == pytest.approx({str(s): treated[s] - base[s] for s in common})
    # the unpaired means still use every seed of their own λ
    assert report["per_weight"]["0.01"]["metrics"]["mse"]["1"]["mean"] == pytest.approx(
        np.mean(list(treated.values())))


def test_sentence_says_excludes_zero_exactly_when_the_interval_does():
    seeds = [0, 1, 2]
    table = grid([(s, w) for s in seeds for w in (0.0, 0.01)])
    cases = {  # M: (baseline, treated) per seed
        "1": ([0.030, 0.022, 0.027], [0.026, 0.016, 0.021]),   # lower, interval below zero
        "3": ([0.020, 0.020, 0.020], [0.010, 0.028, 0.019]),   # mixed signs
        "10": ([0.015, 0.012, 0.011], [0.015, 0.012, 0.011]),  # exactly no difference
    }
    for m, (b, t) in cases.items():
        for s in seeds:
            _set_mse(table[(s, 0.0)], m, b[s])
            _set_mse(table[(s, 0.01)], m, t[s])
    for s, (b, t) in enumerate(zip([1.0, 2.0, 3.0], [9.0, 10.5, 12.0])):
        table[(s, 0.0)]["penalty_estimate"], table[(s, 0.01)]["penalty_estimate"] = b, t
    report = study.aggregate([run(s, w, r) for (s, w), r in table.items()])
    paired = report["paired_differences"]["0.01"]
    expected = {"mse/1": (True, "lowers the test MSE at M=1"),
                "mse/3": (False, "the test MSE at M=3"),
                "mse/10": (False, "does not change the test MSE at M=10"),
                "penalty_estimate": (True, "raises the penalty estimate")}
    for key, (excludes, words) in expected.items():
        path = ("mse", key[4:]) if key.startswith("mse/") else (key,)
        d = values(table, 0.01, path, seeds) - values(table, 0.0, path, seeds)
        half = scipy.stats.t.ppf(0.975, 2) * np.std(d, ddof=1) / np.sqrt(3)
        low, high = d.mean() - half, d.mean() + half
        assert (low > 0 or high < 0) == excludes  # the case is what it claims to be
        sentence = paired[key]["sentence"]
        assert paired[key]["excludes_zero"] is excludes
        assert ("excludes zero" in sentence) is excludes
        assert ("includes zero: no difference shown at this budget" in sentence) is (
            not excludes and key != "mse/10")
        assert words in sentence
        # A direction only where the interval shows one, never beside "no difference".
        assert (("lowers" in sentence) or ("raises" in sentence)) is excludes
    assert paired["mse/10"]["mean"] == 0.0 and paired["mse/10"]["ci95"] == [0.0, 0.0]
    # every paired measurement of SPEC's list is there
    assert set(paired) == {"mse/1", "mse/3", "mse/10", "conditional_variance",
                           "total_variance", "penalty_estimate", "nuisance_mse"}


def test_per_target_ratios_against_lambda_zero_beside_the_papers():
    cells = [(s, w) for s in (0, 1, 2) for w in (0.0, 0.01, 0.1)]
    table = grid(cells, seed=3)
    runs = [run(s, w, r) for (s, w), r in table.items()]
    report = study.aggregate(runs, paper=study.PAPER_SPIROGRAPH)
    ratios = report["ratios"]
    assert set(ratios["per_weight"]) == {"0.01", "0.1"}
    for weight in (0.01, 0.1):
        for m in MS:
            row = ratios["per_weight"][repr(weight)][m]
            for t in TARGETS:
                mine = values(table, weight, ("mse_per_target", m, t), [0, 1, 2]).mean()
                base = values(table, 0.0, ("mse_per_target", m, t), [0, 1, 2]).mean()
                assert row[t] == pytest.approx(mine / base, rel=1e-12)
            assert row["mse"] == pytest.approx(
                values(table, weight, ("mse", m), [0, 1, 2]).mean()
                / values(table, 0.0, ("mse", m), [0, 1, 2]).mean(), rel=1e-12)
    assert ratios["paper"] == {"m": 0.75, "b": 0.65, "sigma": 0.58, "rfore": 0.12}
    assert report["paper"]["label"] == "paper (ResNet-18, 50 epochs, 100k targets)"
    assert report["paper"]["per_weight"]["0.0"]["mse"]["1"] == {"mean": 2.93e-3, "se": 6.8e-5}
    assert study.aggregate(runs)["ratios"]["paper"] is None
    assert study.aggregate(runs)["paper"] is None


def test_ratios_compare_the_seeds_both_weights_finished():
    table = grid([(s, w) for s in (0, 1) for w in (0.0, 0.01)], seed=4)
    runs = [run(s, w, r, status="diverged" if (s, w) == (1, 0.01) else "done")
            for (s, w), r in table.items()]
    report = study.aggregate(runs)
    for m in MS:
        row = report["ratios"]["per_weight"]["0.01"][m]
        assert row["n"] == 1  # seed 1 diverged at λ = 0.01: seed 0 alone on both sides
        assert row["mse"] == pytest.approx(values(table, 0.01, ("mse", m), [0])[0]
                                           / values(table, 0.0, ("mse", m), [0])[0], rel=1e-12)
        assert row["b"] == pytest.approx(
            values(table, 0.01, ("mse_per_target", m, "b"), [0])[0]
            / values(table, 0.0, ("mse_per_target", m, "b"), [0])[0], rel=1e-12)
    readme = study.format_readme(report, {"command": "c"})
    assert "| λ | M | n | test MSE |" in readme and "| 0.01 | 1 | 1 |" in readme


def test_failed_and_diverged_runs_are_excluded_and_listed():
    good = [(0, 0.0), (1, 0.0), (2, 0.0), (0, 0.01), (1, 0.01)]
    table = grid(good + [(3, 0.0), (3, 0.01), (4, 0.01)], seed=5)
    table[(3, 0.0)]["mse_per_target"]["3"]["b"] = float("nan")  # "done", but it blew up
    table[(3, 0.01)]["mse"]["1"] = float("nan")
    runs = [run(s, w, table[(s, w)]) for s, w in good]
    runs += [run(2, 0.01, None, status="failed"),
             run(3, 0.01, table[(3, 0.01)], status="diverged"),
             run(4, 0.01, table[(4, 0.01)], status="diverged"),  # finite, still left out
             run(3, 0.0, table[(3, 0.0)])]
    report = study.aggregate(runs)
    listed = {(r["seed"], r["weight_key"], r["status"]) for r in report["excluded"]}
    assert listed == {(2, "0.01", "failed"), (3, "0.01", "diverged"),
                      (4, "0.01", "diverged"), (3, "0.0", "diverged")}
    assert "mse_per_target/3/b" in next(r["reason"] for r in report["excluded"]
                                        if (r["seed"], r["weight_key"]) == (3, "0.0"))
    assert report["per_weight"]["0.0"]["seeds"] == [0, 1, 2]
    assert report["per_weight"]["0.01"]["seeds"] == [0, 1]
    x = values(table, 0.01, ("mse", "1"), [0, 1])
    stat = report["per_weight"]["0.01"]["metrics"]["mse"]["1"]
    assert stat["mean"] == pytest.approx(x.mean()) and stat["n"] == 2
    assert stat["se"] == pytest.approx(np.std(x, ddof=1) / np.sqrt(2))
    assert report["paired_differences"]["0.01"]["mse/1"]["seeds"] == [0, 1]
    assert len(report["runs"]) == 9


def test_bad_inputs_are_refused_and_lambda_keys_are_exact():
    table = grid([(0, 0.0)])
    with pytest.raises(ValueError, match="two runs for seed 0"):
        study.aggregate([run(0, 0.0, table[(0, 0.0)]), run(0, -0.0, table[(0, 0.0)])])
    with pytest.raises(ValueError, match="status"):
        study.aggregate([run(0, 0.0, table[(0, 0.0)], status="crashed")])
    assert study.weight_key(0) == study.weight_key(-0.0) == "0.0"
    assert study.weight_key(0.01) == "0.01" != study.weight_key(0.010000001)


def _monitor(rng, epochs=(1, 2, 3)):
    return {"epoch": list(epochs),
            "monitor_probe_mse": [float(v) for v in rng.uniform(0.01, 0.1, len(epochs))],
            "monitor_conditional_variance": [float(v) for v in
                                             rng.uniform(1e-3, 1e-2, len(epochs))]}


def _robustness(rng):
    def rows():
        return [{"value": v, "mse": float(rng.uniform(0.01, 0.1)),
                 "mse_per_target": {t: 0.01 for t in TARGETS}} for v in (0.0, 0.1, 0.2)]
    return {"background_shift": rows(), "h_widen": rows()}


def test_write_report_writes_json_readme_and_plots(tmp_path):
    rng = np.random.default_rng(7)
    cells = [(s, w) for s in (0, 1, 2) for w in (0.0, 0.01)]
    table = grid(cells, seed=7)
    monitors = {c: _monitor(rng) for c in cells}
    sweeps = {c: _robustness(rng) for c in cells}
    runs = [run(s, w, table[(s, w)], monitor=monitors[(s, w)], robustness=sweeps[(s, w)])
            for s, w in cells] + [run(3, 0.01, None, status="failed")]
    report = study.aggregate(runs, paper=study.PAPER_SPIROGRAPH)
    # monitor and robustness curves: the mean over seeds at each epoch / shifted value
    curve = report["monitor"]["0.01"]["monitor_probe_mse"]
    assert curve["epoch"] == [1, 2, 3]
    assert curve["mean"] == pytest.approx(
        np.mean([monitors[(s, 0.01)]["monitor_probe_mse"] for s in (0, 1, 2)], axis=0))
    point = report["robustness"]["0.0"]["h_widen"]
    assert point["value"] == [0.0, 0.1, 0.2]
    assert point["mse"][1]["mean"] == pytest.approx(
        np.mean([sweeps[(s, 0.0)]["h_widen"][1]["mse"] for s in (0, 1, 2)]))

    meta = {"command": "python -m invcl_tf.report --config=C --output=D", "commit": "abc123",
            "machine": "2-core CPU", "wall_time_s": 3723.0, "config_name": "spirograph_cpu"}
    paths = study.write_report(report, str(tmp_path / "out"), meta)
    names = sorted(os.path.basename(p) for p in paths)
    assert names == sorted(["report.json", "README.md", "mse_vs_m.png", "monitor.png",
                            "robustness.png"])
    for p in paths:
        assert os.path.exists(p)
        if p.endswith(".png"):
            assert os.path.getsize(p) > 1000
    with open(tmp_path / "out" / "report.json") as f:
        stored = json.load(f)
    assert stored["meta"] == meta
    assert stored["per_weight"]["0.01"]["metrics"]["mse"]["3"]["mean"] == pytest.approx(
        report["per_weight"]["0.01"]["metrics"]["mse"]["3"]["mean"])
    readme = (tmp_path / "out" / "README.md").read_text(encoding="utf-8")
    assert "paper (ResNet-18, 50 epochs, 100k targets)" in readme
    assert "SPEC" not in readme  # nothing cited that a checkout does not hold
    for key in ("λ = 0.0", "λ = 0.01"):
        assert key in readme
    assert "total variance" in readme and "conditional variance" in readme
    assert "0.75" in readme and "0.00293 ± 6.8e-05" in readme
    assert "failed" in readme and "abc123" in readme and "spirograph_cpu" in readme
    for diff in report["paired_differences"]["0.01"].values():
        assert diff["sentence"] in readme
    assert not any(n.endswith(".tmp") for n in os.listdir(tmp_path / "out"))


def test_write_report_without_monitor_or_robustness_writes_no_such_plot(tmp_path):
    table = grid([(0, 0.0), (1, 0.0), (0, 0.01)])
    report = study.aggregate([run(s, w, r) for (s, w), r in table.items()])
    assert report["monitor"] is None and report["robustness"] is None
    paths = study.write_report(report, str(tmp_path), {"config_name": "x"})
    assert sorted(os.path.basename(p) for p in paths) == ["README.md", "mse_vs_m.png",
                                                          "report.json"]
    assert not (tmp_path / "monitor.png").exists()
    assert not (tmp_path / "robustness.png").exists()
    # one paired seed: a mean difference, no interval, nothing claimed
    diff = report["paired_differences"]["0.01"]["mse/1"]
    assert diff["n"] == 1 and diff["se"] is None and diff["ci95"] is None
    assert "no difference shown" in diff["sentence"]


def test_a_study_where_every_run_failed_still_writes_its_report(tmp_path):
    report = study.aggregate([run(0, 0.0, None, status="failed"),
                              run(0, 0.01, None, status="diverged")])
    assert report["paired_differences"] == {} and report["ratios"] is None
    paths = study.write_report(report, str(tmp_path), {})
    assert sorted(os.path.basename(p) for p in paths) == ["README.md", "report.json"]
    readme = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "failed" in readme and "diverged" in readme


def cifar_results(rng, shift):
    ms = ("1", "10")
    return {"accuracy": {m: float(0.80 + shift + rng.uniform(0, 0.01)) for m in ms},
            "cross_entropy": {m: float(rng.uniform(0.5, 0.7)) for m in ms},
            "probe_grad_norm": {m: 1e-6 for m in ms},
            "untransformed": {"accuracy": {"1": float(0.82 + shift)},
                              "cross_entropy": {"1": 0.6}, "probe_grad_norm": {"1": 1e-6}},
            "color_only": {"accuracy": {m: float(0.83 + shift) for m in ms},
                           "cross_entropy": {m: 0.55 for m in ms}},
            "conditional_variance": float(rng.uniform(1e-3, 1e-2)),
            "total_variance": float(rng.uniform(0.1, 0.5)),
            "penalty_estimate": float(rng.uniform(0.5, 1.0)),
            "nuisance_mse": float(rng.uniform(0.03, 0.04)),
            "nuisance_mse_baseline": 0.0408, "task": "classification"}


def test_classification_aggregates_accuracy_and_says_raises(tmp_path):
    rng = np.random.default_rng(11)
    table = {(s, w): cifar_results(rng, 0.05 if w else 0.0) for s in (0, 1, 2)
             for w in (0.0, 0.1)}
    report = study.aggregate([run(s, w, r) for (s, w), r in table.items()],
                             paper=study.PAPER_CIFAR10)
    x = values(table, 0.1, ("accuracy", "10"), [0, 1, 2])
    stat = report["per_weight"]["0.1"]["metrics"]["accuracy"]["10"]
    assert stat["mean"] == pytest.approx(x.mean())
    assert stat["se"] == pytest.approx(scipy.stats.sem(x))
    assert "probe_grad_norm" not in report["per_weight"]["0.1"]["metrics"]
    diff = report["paired_differences"]["0.1"]["accuracy/1"]
    d = values(table, 0.1, ("accuracy", "1"), [0, 1, 2]) - values(
        table, 0.0, ("accuracy", "1"), [0, 1, 2])
    assert diff["mean"] == pytest.approx(d.mean())
    assert "raises the test accuracy at M=1" in diff["sentence"]
    assert "excludes zero" in diff["sentence"]
    assert "untransformed/accuracy/1" in report["paired_differences"]["0.1"]
    assert report["ratios"] is None  # an MSE ratio has no meaning for accuracy
    paths = study.write_report(report, str(tmp_path), {"config_name": "cifar10"})
    assert "accuracy_vs_m.png" in [os.path.basename(p) for p in paths]
    assert os.path.getsize(tmp_path / "accuracy_vs_m.png") > 1000
    readme = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert study.PAPER_CIFAR10["label"] in readme and "λ = 0.1" in readme
    assert math.isclose(study.PAPER_CIFAR10["per_weight"]["0.1"]["accuracy"]["100"]["mean"],
                        0.9483)


def test_the_papers_points_get_a_panel_of_their_own(tmp_path, monkeypatch):
    import matplotlib.figure

    figures = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig",
                        lambda fig, *a, **k: figures.append(fig))
    table = grid([(s, w) for s in (0, 1) for w in (0.0, 0.01)])
    ours = study.aggregate([run(s, w, r) for (s, w), r in table.items()])
    with_paper = study.aggregate([run(s, w, r) for (s, w), r in table.items()],
                                 paper=study.PAPER_SPIROGRAPH)
    study.plot_scores_vs_m(ours, str(tmp_path / "a.png"))
    study.plot_scores_vs_m(with_paper, str(tmp_path / "b.png"))
    alone, beside = figures
    assert len(alone.axes) == 1
    first, second = beside.axes
    paper_mse = [s["mean"] for m in study.PAPER_SPIROGRAPH["per_weight"].values()
                 for s in m["mse"].values()]
    our_mse = [s["mean"] for k in with_paper["weights"]
               for s in with_paper["per_weight"][k]["metrics"]["mse"].values()]
    drawn = lambda ax: sorted(y for c in ax.containers for y in c.lines[0].get_ydata())
    assert drawn(first) == pytest.approx(sorted(our_mse))
    assert drawn(second) == pytest.approx(sorted(paper_mse))
    assert "paper" in second.get_title() and "paper" not in first.get_title()
    assert [t.get_text() for t in first.get_xticklabels()] == ["1", "3", "10"]
