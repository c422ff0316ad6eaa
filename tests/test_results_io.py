"""What the evaluation prints and plots: the table's words and the feature-averaging axis."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from invcl_tf import results_io  # noqa: E402

_TARGETS = ("m", "b", "sigma", "rfore")


def _spirograph_results():
    return {"task": "regression", "mse": {"1": 0.05, "3": 0.04, "10": 0.03},
            "mse_per_target": {m: {t: 0.01 * (i + 1) for i, t in enumerate(_TARGETS)}
                               for m in ("1", "3", "10")},
            "conditional_variance": 0.005, "total_variance": 0.25, "penalty_estimate": 4.1,
            "nuisance_mse": 0.045, "nuisance_mse_baseline": 0.0806}


def test_the_table_says_what_the_targets_and_the_missing_labels_are():
    table = results_io.format_table(_spirograph_results())
    assert "m and b shape the curve, sigma is its thickness, rfore the red" in table
    assert "   3   4.000e-02   1.000e-02   2.000e-02   3.000e-02   4.000e-02" in table
    unlabelled = {**_spirograph_results(), "task": "unlabelled"}
    first = results_io.format_table(unlabelled).splitlines()[0]
    assert first == "No labels (a flat folder, or no dataset.label_key): the label-free " \
                    "metrics only"


def test_the_feature_averaging_axis_is_labelled_with_the_m_evaluated(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([1, 3, 10], [3, 2, 1])
    ax.set_xscale("log")
    results_io.integer_ticks(ax, [1, 3, 10])
    fig.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "3", "10"]
    plt.close(fig)
    path = results_io.plot_feature_averaging(_spirograph_results(), str(tmp_path / "f.png"))
    assert (tmp_path / "f.png").stat().st_size > 1000 and path.endswith("f.png")
