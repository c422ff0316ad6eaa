"""Benchmarks the train step with and without the penalty, the renderer and the input pipeline.

    python -m benchmarks.train_step                 # prints a table, writes benchmarks/train_step.json
    python -m benchmarks.train_step --steps=3 --cases=tiny   # a quick look

Times are medians over ``--steps`` steps after two warm-up steps, measured in one process.
"""

import json
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402
import tensorflow as tf  # noqa: E402

from configs import spirograph  # noqa: E402
from invcl_tf import distribute, pretraining  # noqa: E402
from invcl_tf.data import pipeline, sources  # noqa: E402
from invcl_tf.transforms import spirograph as spiro  # noqa: E402

_STEPS = flags.DEFINE_integer("steps", 5, "Timed steps per measurement.")
_OUTPUT = flags.DEFINE_string("output", os.path.join(os.path.dirname(__file__),
                                                     "train_step.json"), "JSON output path.")
_CASES = flags.DEFINE_list("cases", ["quarter", "full"], "Cases to run: tiny, quarter, full.")
_JIT = flags.DEFINE_list("jit", ["false", "true"], "jit_compile settings to measure.")
_PRECISION = flags.DEFINE_list("precision", ["float32", "mixed_bfloat16"],
                               "Precision policies to measure (without XLA).")

#: name -> (arch, width_multiplier, batch_size)
CASES = {"tiny": ("resnet_tiny", 1.0, 64), "quarter": ("resnet18", 0.25, 256),
         "full": ("resnet18", 1.0, 64)}


def _median_seconds(fn, steps):
    fn()
    fn()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def step_time(arch, width, batch_size, gp_weight, jit, steps, precision="float32"):
    """Median seconds of one compiled train step on a fixed batch."""
    distribute.set_precision(precision)
    config = spirograph.get_config()
    config.model.arch, config.model.width_multiplier = arch, width
    config.train.batch_size = batch_size
    config.gp.weight = gp_weight
    transform = spiro.SpirographTransform()
    model = pretraining.build_model(config, transform, steps_per_epoch=100)
    targets = spiro.sample_targets([0, 0], batch_size)
    batch = pipeline.draw_views(transform, targets, pipeline.fold(0, 1),
                                config.gp.num_extra if gp_weight else 0)
    step = tf.function(model.train_step, jit_compile=jit)
    return _median_seconds(lambda: float(step(batch)["loss"]), steps)


def renderer_throughput(batch_size, jit, steps, with_grad):
    """Images per second of ``render`` (optionally with the gradient w.r.t. the nuisance)."""
    targets = spiro.sample_targets([0, 0], batch_size)
    nuisance = spiro.sample_nuisance([0, 1], [batch_size])

    @tf.function(jit_compile=jit)
    def run(t, n):
        if not with_grad:
            return tf.reduce_sum(spiro.render(t, n))
        with tf.GradientTape() as tape:
            tape.watch(n)
            total = tf.reduce_sum(spiro.render(t, n))
        return tf.reduce_sum(tape.gradient(total, n))

    return batch_size / _median_seconds(lambda: float(run(targets, nuisance)), steps)


def pipeline_throughput(batch_size, num_extra, batches):
    """Batches per second the tf.data pipeline delivers (100k targets, as the paper's run)."""
    targets, _ = sources.spirograph_targets(0, 100_000, 2)
    ds = pipeline.train_dataset(targets, spiro.SpirographTransform(), batch_size, num_extra, 0,
                                0, 1).take(batches + 2)
    it = iter(ds)
    next(it), next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches / (time.perf_counter() - start)


def main(argv):
    del argv
    rows = []
    print(f"{'case':<30} {'precision':>14} {'jit':>5} {'plain s/step':>13} "
          f"{'penalty s/step':>15} {'ratio':>6}")
    settings = [("float32", j == "true") for j in _JIT.value]
    settings += [(p, False) for p in _PRECISION.value if p != "float32"]
    for name in _CASES.value:
        arch, width, batch = CASES[name]
        for precision, jit in settings:
            plain = step_time(arch, width, batch, 0.0, jit, _STEPS.value, precision)
            penalised = step_time(arch, width, batch, 0.01, jit, _STEPS.value, precision)
            label = f"{arch} w={width:g} batch {batch}"
            rows.append({"case": label, "precision": precision, "jit": jit, "plain_s": plain,
                         "penalty_s": penalised, "ratio": penalised / plain})
            print(f"{label:<30} {precision:>14} {str(jit):>5} {plain:13.3f} {penalised:15.3f} "
                  f"{penalised / plain:6.2f}", flush=True)
    distribute.set_precision("float32")
    render = {}
    print(f"\n{'renderer, batch 256':<30} {'jit':>5} {'images/s':>13}")
    for with_grad in (False, True):
        for jit in (False, True):
            value = renderer_throughput(256, jit, _STEPS.value * 4, with_grad)
            key = ("forward+grad" if with_grad else "forward") + (" jit" if jit else "")
            render[key] = value
            print(f"{key:<30} {str(jit):>5} {value:13.0f}")
    feed = pipeline_throughput(512, 100, 20)
    print(f"\ninput pipeline, batch 512 with 100 extra draws: {feed:.1f} batches/s")
    result = {"steps": rows, "renderer_images_per_s": render, "pipeline_batches_per_s": feed,
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "tensorflow": tf.__version__}}
    with open(_OUTPUT.value, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {_OUTPUT.value}")


if __name__ == "__main__":
    app.run(main)
