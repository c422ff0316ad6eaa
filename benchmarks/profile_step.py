"""Where a train step's time goes: the TensorFlow profiler's trace of a few steps, summed by op.

    python -m benchmarks.profile_step --case=quarter            # plain and penalty steps
    python -m benchmarks.profile_step --case=full --precision=mixed_bfloat16 --top=25

Runs the compiled step (no XLA: with XLA the trace shows clusters, not ops) on a fixed batch,
profiles ``--steps`` steps after warm-up with ``tf.profiler.experimental``, and sums the
durations of the executor's op events by op type and by the layer that owns them. The trace
is kept under ``--logdir`` for TensorBoard's profile plugin. Summaries go to
``benchmarks/profile_<case>_<precision>.json``; benchmarks/NOTES.md reads them.
"""

import collections
import glob
import json
import os
import re
import shutil

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.tsl.profiler.protobuf import xplane_pb2  # noqa: E402

from benchmarks import cases  # noqa: E402

_CASE = flags.DEFINE_enum("case", "quarter", list(cases.CASES), "Model and batch size.")
_PRECISION = flags.DEFINE_enum("precision", "float32", ["float32", "mixed_bfloat16"],
                               "Keras dtype policy.")
_STEPS = flags.DEFINE_integer("steps", 3, "Profiled steps.")
_TOP = flags.DEFINE_integer("top", 15, "Op types printed per step kind.")
_LOGDIR = flags.DEFINE_string("logdir", "/tmp/invcl-profile", "Where the trace is written.")


def op_times(logdir):
    """``({op type: seconds}, {scope: seconds}, {op type: count})`` summed over the executor's
    op events (thread lines named tf_Compute / tf_data / Eigen) of the trace in ``logdir``."""
    path = sorted(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True))[-1]
    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    by_type, by_scope, counts = (collections.Counter() for _ in range(3))
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        for line in plane.lines:
            if line.name == "python":
                continue
            for event in line.events:
                meta = plane.event_metadata[event.metadata_id]
                name, _, kind = meta.name.rpartition(":")
                if not name or "::" in meta.name:
                    continue  # executor bookkeeping, not an op
                seconds = event.duration_ps * 1e-12
                by_type[kind] += seconds
                counts[kind] += 1
                by_scope[_scope(name)] += seconds
    return by_type, by_scope, counts


def _scope(name):
    """The part of an op's name that says what it belongs to: gradient or forward, layer."""
    parts = name.split("/")
    grads = sum(p.startswith("gradients") or p.endswith("_grad") for p in parts)
    layer = next((p for p in parts if re.match(r"(stem|stage\d|head|encoder|pool|fc)", p)),
                 parts[0])
    layer = re.sub(r"_block\d+.*", "", layer)
    return f"{'d' * grads}{'/' if grads else ''}{layer}"


def profile(case, precision, gp_weight, steps, logdir):
    step, batch = cases.fixed_batch_step(case, precision, gp_weight, jit=False)
    for _ in range(3):
        float(step(batch)["loss"])
    shutil.rmtree(logdir, ignore_errors=True)
    tf.profiler.experimental.start(logdir)
    for _ in range(steps):
        float(step(batch)["loss"])
    tf.profiler.experimental.stop()
    by_type, by_scope, counts = op_times(logdir)
    return {"op_seconds_per_step": {k: v / steps for k, v in by_type.most_common()},
            "op_counts_per_step": {k: counts[k] // steps for k in by_type},
            "scope_seconds_per_step": {k: v / steps for k, v in by_scope.most_common()}}


def main(argv):
    del argv
    result = {"case": _CASE.value, "precision": _PRECISION.value, "steps": _STEPS.value}
    for kind, weight in (("plain", 0.0), ("penalty", 0.01)):
        result[kind] = profile(_CASE.value, _PRECISION.value, weight, _STEPS.value,
                               os.path.join(_LOGDIR.value, kind))
    plain, penalty = result["plain"]["op_seconds_per_step"], result["penalty"][
        "op_seconds_per_step"]
    print(f"\n{_CASE.value}, {_PRECISION.value}: op time per step (s), summed over threads")
    print("| op | plain | penalty | count (penalty) |\n|---|---:|---:|---:|")
    for op in list(penalty)[:_TOP.value]:
        print(f"| {op} | {plain.get(op, 0.0):.3f} | {penalty[op]:.3f} | "
              f"{result['penalty']['op_counts_per_step'][op]} |")
    print(f"| **all ops** | {sum(plain.values()):.3f} | {sum(penalty.values()):.3f} | |")
    print("\nby scope (d/ = first derivative, dd/ = second), penalty step:")
    for scope, seconds in list(result["penalty"]["scope_seconds_per_step"].items())[:12]:
        print(f"  {scope:<30} {seconds:.3f}")
    output = os.path.join(os.path.dirname(__file__),
                          f"profile_{_CASE.value}_{_PRECISION.value}.json")
    with open(output, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {output}; trace under {_LOGDIR.value} (TensorBoard's profile plugin)")


if __name__ == "__main__":
    app.run(main)
