"""The project's benchmark: train-step cost, renderer and feature-averaged encoding throughput,
the demo's evaluation time and peak memory. Prints Markdown tables, writes JSON.

    python -m benchmarks.run                              # everything (~25 min on 2 cores)
    python -m benchmarks.run --sections=steps --cases=quarter --precision=float32 --jit=false
    python -m benchmarks.run --sections=encoding,demo_eval --repeats=7

Every measurement runs in its own process (a fresh TensorFlow, so one case's memory, traced
functions or dtype policy cannot leak into the next), and every figure is the median of
``--repeats`` values with their min and max:

* ``peak``: the machine's dense matrix-product rate in float32 and bfloat16 (GFLOP/s), against
  which the encoding throughput below is put (the encoder's FLOPs from TF's profiler);
* ``steps``: seconds per training step, (1) inside ``model.fit`` with the real input pipeline,
  from whole epochs after a first one that traces and warms up (what a user gets; the
  Spirograph pipeline of ``invcl-train``, ``--steps_per_epoch`` steps an epoch), and (2) the
  compiled ``train_step`` on one fixed batch (what the step itself costs); with and without
  the penalty, per case (ResNet-18 at 1/4 width, batch 256; full width, batch 64), precision
  and XLA setting;
* ``renderer``: Spirograph images per second, forward and with the gradient with respect to
  the nuisance, batch 512, XLA off and on;
* ``encoding``: feature-averaged encoding (render + encoder in inference mode) at 1/4 width,
  images per second, as the evaluation does it (``feature_averaging.ViewEncoder``; float32 and
  ``eval.precision=mixed_bfloat16``) and through the exported SavedModel's
  ``encode_averaged``;
* ``demo_eval``: wall time of the CPU demo's whole evaluation (configs/spirograph_cpu.py, an
  untrained encoder: the time does not depend on the weights);
* ``geometry``: the penalty step of CIFAR-10's config at 1/4 width, batch 256, on a fixed
  batch, the penalty covering the colour jitter only (the paper's) or colour and geometry
  (``gp.covers=color+geometry``: the crop warped in the step).

Peak resident memory is each process's own (``ru_maxrss``). Quote figures only from a run on
an otherwise idle machine.
"""

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from invcl_tf import results_io  # noqa: E402 - JSON only: the parent process loads no TF

_SECTIONS = flags.DEFINE_list("sections", ["peak", "steps", "renderer", "encoding",
                                           "demo_eval", "geometry"], "What to measure.")
_CASES = flags.DEFINE_list("cases", ["quarter", "full"], "Step cases (benchmarks/cases.py).")
_PRECISION = flags.DEFINE_list("precision", ["float32", "mixed_bfloat16"], "Dtype policies.")
_JIT = flags.DEFINE_list("jit", ["false", "true"], "XLA settings (jit_compile).")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Values per figure (the median is quoted).")
_STEPS_PER_EPOCH = flags.DEFINE_integer("steps_per_epoch", 4, "Steps of each fit epoch.")
_OUTPUT = flags.DEFINE_string("output", os.path.join(os.path.dirname(__file__),
                                                     "results.json"), "JSON output path.")
_WORKER = flags.DEFINE_string("worker", None, "Internal: run one measurement, print JSON.")

_ENCODE_BATCH = 500  # eval.batch_size of the configs
_ENCODE_INPUTS = 2_000
_ENCODE_VIEWS = 10  # the demo's largest M


def summary(values):
    """``{"median", "min", "max", "values"}`` of a list of numbers."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "values": list(values)}


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _timed(fn, repeats, warmup=2):
    for _ in range(warmup):
        fn()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return seconds


def measure_step(case, precision, jit, gp_weight, repeats, steps_per_epoch):
    """Seconds per step inside ``fit`` (whole epochs) and on a fixed batch."""
    from benchmarks import cases
    from invcl_tf import distribute, pretraining
    from invcl_tf.data import sources

    step, batch = cases.fixed_batch_step(case, precision, gp_weight, jit)
    fixed = _timed(lambda: float(step(batch)["loss"]), repeats)

    distribute.set_precision(precision)
    config = cases.config_for(case, precision, gp_weight, jit)
    config.dataset.train_size = steps_per_epoch * config.train.batch_size
    config.train.epochs = repeats + 1
    data = sources.load(config)
    model = pretraining.build_model(config, data.transform, steps_per_epoch)
    timer = cases.EpochTimer()
    pretraining.fit(model, config, data.train_x, data.transform, callbacks=[timer], verbose=0)
    in_fit = [s / steps_per_epoch for s in timer.seconds[1:]]
    return {"fixed_batch_s": summary(fixed), "fit_s": summary(in_fit)}


def measure_renderer(jit, with_grad, repeats, batch_size=512):
    """Spirograph images per second (optionally with the gradient w.r.t. the nuisance)."""
    import tensorflow as tf
    from invcl_tf.transforms import spirograph as spiro

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

    # 20 batches a value: one batch takes milliseconds.
    seconds = _timed(lambda: [float(run(targets, nuisance)) for _ in range(20)], repeats)
    return {"images_per_s": summary([20 * batch_size / s for s in seconds])}


def _quarter_model():
    from benchmarks import cases
    from invcl_tf import pretraining
    from invcl_tf.transforms import spirograph as spiro

    config = cases.config_for("quarter", "float32", 0.01, False)
    return config, pretraining.build_model(config, spiro.SpirographTransform(), 100)


def measure_peak(dtype, repeats, size=2048):
    """The machine's dense float32 or bfloat16 matrix-product rate, GFLOP/s (2·n³ a product)."""
    import tensorflow as tf

    a = tf.random.stateless_normal([size, size], [0, 1], dtype=tf.float32)
    a = tf.cast(a, dtype)
    product = tf.function(lambda x: tf.reduce_sum(tf.cast(tf.matmul(x, x), tf.float32)))
    seconds = _timed(lambda: [float(product(a)) for _ in range(5)], repeats)
    return {"gflop_per_s": summary([5 * 2 * size ** 3 / s / 1e9 for s in seconds]),
            "size": size}


def encoder_mflop(width):
    """Floating-point operations of one ResNet-18 forward at ``width``, 32×32, in millions
    (TF's profiler count: a multiply-add is 2)."""
    import tensorflow as tf
    from tensorflow.python.profiler import model_analyzer, option_builder
    from invcl_tf.models.resnet import build_encoder

    encoder = build_encoder("resnet18", width, (32, 32, 3))
    graph = tf.function(lambda x: encoder(x, training=False)).get_concrete_function(
        tf.TensorSpec([1, 32, 32, 3])).graph
    info = model_analyzer.profile(graph, options=option_builder.ProfileOptionBuilder(
        option_builder.ProfileOptionBuilder.float_operation()).with_empty_output().build())
    return info.total_float_ops / 1e6


def measure_encoding(repeats):
    """Feature-averaged encoding at width 1/4: the evaluation's loop and the SavedModel."""
    import tensorflow as tf
    from invcl_tf import eval_protocol, feature_averaging, serving
    from invcl_tf.data import pipeline
    from invcl_tf.transforms import spirograph as spiro

    config, model = _quarter_model()
    targets = spiro.sample_targets([0, 3], _ENCODE_INPUTS).numpy()
    views = feature_averaging.ViewEncoder(model.encoder, model.transform, _ENCODE_BATCH)
    seeds = [pipeline.fold(0, p) for p in range(_ENCODE_VIEWS)]
    images = _ENCODE_INPUTS * _ENCODE_VIEWS
    evaluation = _timed(lambda: views.encode_passes(targets, seeds, [_ENCODE_VIEWS]), repeats, 1)
    rounded = feature_averaging.ViewEncoder(
        eval_protocol.inference_encoder(model.encoder, "mixed_bfloat16"), model.transform,
        _ENCODE_BATCH)
    bf16 = _timed(lambda: rounded.encode_passes(targets, seeds, [_ENCODE_VIEWS]), repeats, 1)
    with tempfile.TemporaryDirectory() as root:
        path = serving.export(model.encoder, model.head, model.transform, (4,), "{}",
                              os.path.join(root, "export"))
        loaded = tf.saved_model.load(path)
        batches = [tf.constant(targets[i:i + _ENCODE_BATCH])
                   for i in range(0, _ENCODE_INPUTS, _ENCODE_BATCH)]

        def saved_model():
            for b in batches:
                loaded.encode_averaged(inputs=b, num_samples=tf.constant(_ENCODE_VIEWS),
                                       seed=tf.constant(0)).numpy()

        exported = _timed(saved_model, repeats, 1)
    return {"encoder_mflop_per_image": encoder_mflop(0.25),
            "evaluation_images_per_s": summary([images / s for s in evaluation]),
            "evaluation_bf16_images_per_s": summary([images / s for s in bf16]),
            "saved_model_images_per_s": summary([images / s for s in exported]),
            "views": _ENCODE_VIEWS, "inputs": _ENCODE_INPUTS, "batch": _ENCODE_BATCH}


def measure_demo_eval(repeats):
    """Wall time of the CPU demo's evaluation (untrained encoder of the demo's shape)."""
    from invcl_tf import configuration, eval_protocol, pretraining
    from invcl_tf.data import sources

    demo = configuration.import_config_file(
        os.path.join(os.path.dirname(__file__), "..", "configs", "spirograph_cpu.py"))
    config = demo.get_config()
    data = sources.load(config)
    model = pretraining.build_model(config, data.transform, 100)
    seconds = _timed(lambda: eval_protocol.evaluate(model.encoder, data, config), repeats, 1)
    return {"seconds": summary(seconds)}


def measure_image_step(covers, repeats):
    """Seconds per penalty step on CIFAR-shaped images, by what the penalty covers."""
    from benchmarks import cases

    step, batch = cases.image_fixed_batch_step(covers)
    return {"fixed_batch_s": summary(_timed(lambda: float(step(batch)["loss"]), repeats))}


def _run_worker(spec):
    kind, *args = spec.split(":")
    repeats = _REPEATS.value
    if kind == "step":
        case, precision, jit, gp = args
        result = measure_step(case, precision, jit == "true", float(gp), repeats,
                              _STEPS_PER_EPOCH.value)
    elif kind == "renderer":
        jit, grad = args
        result = measure_renderer(jit == "true", grad == "true", repeats)
    elif kind == "peak":
        result = measure_peak(args[0], repeats)
    elif kind == "encoding":
        result = measure_encoding(repeats)
    elif kind == "demo_eval":
        result = measure_demo_eval(repeats)
    elif kind == "image_step":
        result = measure_image_step(args[0], repeats)
    else:
        raise ValueError(f"unknown worker {spec!r}")
    result["peak_rss_mb"] = _peak_rss_mb()
    print("RESULT " + json.dumps(result), flush=True)


def _spawn(spec):
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", f"--worker={spec}",
         f"--repeats={_REPEATS.value}", f"--steps_per_epoch={_STEPS_PER_EPOCH.value}"],
        capture_output=True, text=True, cwd=os.path.join(os.path.dirname(__file__), ".."))
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"benchmark {spec} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(lines[-1][len("RESULT "):])
    print(f"  {spec}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return result


def _fmt(s, digits=3):
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}–{s['max']:.{digits}f})"


def _machine():
    import tensorflow as tf

    model = flags_ = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and not model:
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags") and not flags_:
                    wanted = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "fma")
                    flags_ = " ".join(f for f in line.split(":", 1)[1].split() if f in wanted)
    except OSError:
        pass
    return {"cpu": model, "cpu_flags": flags_, "cpus": os.cpu_count(),
            "platform": platform.platform(), "tensorflow": tf.__version__,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def main(argv):
    del argv
    if _WORKER.value:
        _run_worker(_WORKER.value)
        return
    sections = set(_SECTIONS.value)
    result = {"machine": _machine(), "repeats": _REPEATS.value,
              "command": " ".join(["python -m benchmarks.run", *sys.argv[1:]])}
    started = time.perf_counter()
    if "peak" in sections:
        result["peak"] = {dtype: _spawn(f"peak:{dtype}") for dtype in ("float32", "bfloat16")}
        print("dense matrix product, 2048 x 2048 (GFLOP/s): " + ", ".join(
            f"{dtype} {_fmt(r['gflop_per_s'], 0)}" for dtype, r in result["peak"].items()),
            flush=True)
    if "steps" in sections:
        rows = []
        print("| case | precision | XLA | fit: plain s/step | fit: penalty s/step | fit ratio | "
              "fixed: plain | fixed: penalty | fixed ratio | peak RSS MB (plain / penalty) |")
        print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for case in _CASES.value:
            for precision in _PRECISION.value:
                for jit in _JIT.value:
                    plain = _spawn(f"step:{case}:{precision}:{jit}:0")
                    penalty = _spawn(f"step:{case}:{precision}:{jit}:0.01")
                    row = {"case": case, "precision": precision, "jit": jit == "true",
                           "plain": plain, "penalty": penalty,
                           "fit_ratio": penalty["fit_s"]["median"] / plain["fit_s"]["median"],
                           "fixed_ratio": (penalty["fixed_batch_s"]["median"]
                                           / plain["fixed_batch_s"]["median"])}
                    rows.append(row)
                    print(f"| {case} | {precision} | {jit} | {_fmt(plain['fit_s'])} | "
                          f"{_fmt(penalty['fit_s'])} | {row['fit_ratio']:.2f} | "
                          f"{_fmt(plain['fixed_batch_s'])} | "
                          f"{_fmt(penalty['fixed_batch_s'])} | {row['fixed_ratio']:.2f} | "
                          f"{plain['peak_rss_mb']:.0f} / {penalty['peak_rss_mb']:.0f} |",
                          flush=True)
        result["steps"] = rows
    if "renderer" in sections:
        print("\n| renderer, batch 512 | XLA | images/s | peak RSS MB |\n|---|---|---:|---:|")
        render = []
        for grad in ("false", "true"):
            for jit in _JIT.value:
                r = _spawn(f"renderer:{jit}:{grad}")
                r.update(with_grad=grad == "true", jit=jit == "true")
                render.append(r)
                label = "forward + gradient" if grad == "true" else "forward"
                print(f"| {label} | {jit} | {_fmt(r['images_per_s'], 0)} | "
                      f"{r['peak_rss_mb']:.0f} |", flush=True)
        result["renderer"] = render
    if "encoding" in sections:
        r = _spawn("encoding")
        result["encoding"] = r
        print(f"\nfeature-averaged encoding, ResNet-18 w=1/4, {r['inputs']} inputs x "
              f"{r['views']} views, batch {r['batch']} (images/s): evaluation "
              f"{_fmt(r['evaluation_images_per_s'], 0)} (eval.precision=mixed_bfloat16: "
              f"{_fmt(r['evaluation_bf16_images_per_s'], 0)}), SavedModel encode_averaged "
              f"{_fmt(r['saved_model_images_per_s'], 0)}; peak RSS {r['peak_rss_mb']:.0f} MB",
              flush=True)
        rate = r["evaluation_images_per_s"]["median"] * r["encoder_mflop_per_image"] / 1e3
        print(f"  the encoder's {r['encoder_mflop_per_image']:.1f} MFLOP an image: "
              f"{rate:.0f} GFLOP/s in float32", flush=True)
    if "demo_eval" in sections:
        r = _spawn("demo_eval")
        result["demo_eval"] = r
        print(f"\nCPU demo evaluation (configs/spirograph_cpu.py): {_fmt(r['seconds'], 1)} s; "
              f"peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
    if "geometry" in sections:
        colour, both = _spawn("image_step:color"), _spawn("image_step:color+geometry")
        result["geometry"] = {"color": colour, "color+geometry": both,
                              "ratio": (both["fixed_batch_s"]["median"]
                                        / colour["fixed_batch_s"]["median"])}
        print(f"\nCIFAR-10 penalty step, ResNet-18 w=1/4, batch 256 (s/step): colour only "
              f"{_fmt(colour['fixed_batch_s'])}, colour + geometry "
              f"{_fmt(both['fixed_batch_s'])} ({result['geometry']['ratio']:.2f}x)", flush=True)
    result["wall_s"] = time.perf_counter() - started
    results_io.write_json(result, _OUTPUT.value)
    print(f"\nwrote {_OUTPUT.value} ({result['wall_s'] / 60:.1f} min)")


if __name__ == "__main__":
    app.run(main)
