"""Do repeated runs of ``benchmarks.run`` agree? Prints a Markdown table and writes JSON.

    python -m benchmarks.run --output=/tmp/b1.json ...   # the same command, run 3 times
    python -m benchmarks.compare /tmp/b1.json /tmp/b2.json /tmp/b3.json --output=/tmp/agree.json

For every figure (every median) the runs share, the table shows each run's median and the
largest deviation of one from their mean; ``--tolerance`` (default 0.05) marks the figures
outside it, and the exit code is 1 if there are any.
"""

import json
import sys

from absl import app, flags

from invcl_tf import results_io

_OUTPUT = flags.DEFINE_string("output", None, "Where to write the comparison as JSON.")
_TOLERANCE = flags.DEFINE_float("tolerance", 0.05, "Largest relative deviation from the mean.")


def _label(item):
    """A list entry's name from its scalar fields (case, precision, jit, with_grad, ...)."""
    return "/".join(f"{k}={v}" for k, v in item.items() if isinstance(v, (str, bool, int)))


def medians(tree, prefix=""):
    """``{path: median}`` for every ``summary`` dict (one with a ``median``) in ``tree``."""
    found = {}
    if isinstance(tree, dict):
        if "median" in tree:
            return {prefix: float(tree["median"])}
        for key, value in tree.items():
            if key not in ("machine", "command"):
                found.update(medians(value, f"{prefix}.{key}" if prefix else key))
    elif isinstance(tree, list):
        for item in tree:
            name = _label(item) if isinstance(item, dict) else str(len(found))
            found.update(medians(item, f"{prefix}[{name}]"))
    return found


def compare(runs, tolerance):
    """``[{"figure", "medians", "deviation", "within"}]`` for the figures all ``runs`` hold."""
    per_run = [medians(run) for run in runs]
    shared = [path for path in per_run[0] if all(path in m for m in per_run[1:])]
    rows = []
    for path in shared:
        values = [m[path] for m in per_run]
        mean = sum(values) / len(values)
        deviation = max(abs(v / mean - 1.0) for v in values) if mean else 0.0
        rows.append({"figure": path, "medians": values, "deviation": deviation,
                     "within": deviation <= tolerance})
    return rows


def main(argv):
    paths = argv[1:]
    if len(paths) < 2:
        raise app.UsageError("give two or more results files of benchmarks.run")
    runs = []
    for path in paths:
        with open(path) as f:
            runs.append(json.load(f))
    rows = compare(runs, _TOLERANCE.value)
    print("| figure | " + " | ".join(f"run {i + 1}" for i in range(len(runs)))
          + " | largest deviation from the mean |")
    print("|---|" + "---:|" * (len(runs) + 1))
    for row in rows:
        mark = "" if row["within"] else " **outside**"
        print(f"| {row['figure']} | " + " | ".join(f"{v:.4g}" for v in row["medians"])
              + f" | {100 * row['deviation']:.1f}%{mark} |")
    outside = [r for r in rows if not r["within"]]
    print(f"\n{len(rows) - len(outside)} of {len(rows)} figures within "
          f"±{100 * _TOLERANCE.value:.0f}% of their mean")
    if _OUTPUT.value:
        results_io.write_json({"files": paths, "tolerance": _TOLERANCE.value,
                               "figures": rows}, _OUTPUT.value)
    sys.exit(1 if outside else 0)


if __name__ == "__main__":
    app.run(main)
