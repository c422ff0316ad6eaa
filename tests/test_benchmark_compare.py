"""benchmarks.compare: the figures repeated benchmark runs share, and how far they spread."""

from benchmarks import compare


def _run(plain, encoding):
    return {"machine": {"cpu": "x"}, "command": "python -m benchmarks.run",
            "steps": [{"case": "quarter", "precision": "float32", "jit": False,
                       "plain": {"fit_s": {"median": plain, "min": 0.0, "max": 9.0},
                                 "peak_rss_mb": 10.0},
                       "fit_ratio": 1.7}],
            "encoding": {"evaluation_images_per_s": {"median": encoding}, "views": 10}}


def test_medians_are_found_by_path_and_deviations_are_from_the_mean():
    runs = [_run(1.0, 2000.0), _run(1.1, 2000.0), _run(0.9, 2300.0)]
    assert compare.medians(runs[0]) == {
        "steps[case=quarter/precision=float32/jit=False].plain.fit_s": 1.0,
        "encoding.evaluation_images_per_s": 2000.0}
    rows = {r["figure"]: r for r in compare.compare(runs, tolerance=0.05)}
    step = rows["steps[case=quarter/precision=float32/jit=False].plain.fit_s"]
    assert step["medians"] == [1.0, 1.1, 0.9]
    assert abs(step["deviation"] - 0.1) < 1e-12 and not step["within"]  # mean 1.0
    encoding = rows["encoding.evaluation_images_per_s"]
    assert abs(encoding["deviation"] - 2300 / 2100 + 1) < 1e-12  # 9.5% above the mean
    assert compare.compare(runs[:2], tolerance=0.05)[1]["within"]  # 2000 twice
    # A figure one run lacks is not compared.
    del runs[2]["encoding"]
    assert len(compare.compare(runs, tolerance=0.05)) == 1
