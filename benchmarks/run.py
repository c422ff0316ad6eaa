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
* ``lazy``: seconds per step inside ``fit`` with the penalty every k = 1, 2, 4, 8 steps
  (``gp.every_steps``), against plain + (penalty − plain)/k, per case at the first precision
  and XLA setting (8 steps an epoch at least, so every epoch holds whole cycles);
* ``geometry``: the penalty step of CIFAR-10's config at 1/4 width, batch 256, on a fixed
  batch, the penalty covering the colour jitter only (the paper's) or colour and geometry
  (``gp.covers=color+geometry``: the crop warped in the step).

Peak resident memory is each process's own (``ru_maxrss``). Quote figures only from a run on
an otherwise idle machine.
"""

import json
import os
import platform
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from benchmarks import measurements  # noqa: E402 - its imports of TF are deferred
from invcl_tf import results_io  # noqa: E402 - JSON only: the parent process loads no TF

_SECTIONS = flags.DEFINE_list("sections", ["peak", "steps", "lazy", "renderer", "encoding",
                                           "demo_eval", "geometry"], "What to measure.")
_CASES = flags.DEFINE_list("cases", ["quarter", "full"], "Step cases (benchmarks/cases.py).")
_PRECISION = flags.DEFINE_list("precision", ["float32", "mixed_bfloat16"], "Dtype policies.")
_JIT = flags.DEFINE_list("jit", ["false", "true"], "XLA settings (jit_compile).")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Values per figure (the median is quoted).")
_STEPS_PER_EPOCH = flags.DEFINE_integer("steps_per_epoch", 4, "Steps of each fit epoch.")
_OUTPUT = flags.DEFINE_string("output", os.path.join(os.path.dirname(__file__),
                                                     "results.json"), "JSON output path.")
_WORKER = flags.DEFINE_string("worker", None, "Internal: run one measurement, print JSON.")

# The longest penalty cycle measured: every epoch of the lazy section holds whole cycles.
_LAZY_CYCLE = 8


def _run_worker(spec):
    kind, *args = spec.split(":")
    repeats = _REPEATS.value
    if kind == "step":
        case, precision, jit, gp = args
        result = measurements.measure_step(case, precision, jit == "true", float(gp),
                                           repeats, _STEPS_PER_EPOCH.value)
    elif kind == "lazy":
        case, precision, jit, every_steps = args
        cycle = int(every_steps)
        steps = -(-max(_STEPS_PER_EPOCH.value, _LAZY_CYCLE) // _LAZY_CYCLE) * _LAZY_CYCLE
        result = measurements.measure_step(case, precision, jit == "true",
                                           0.0 if cycle == 0 else 0.01, repeats, steps,
                                           max(cycle, 1))
    elif kind == "renderer":
        jit, grad = args
        result = measurements.measure_renderer(jit == "true", grad == "true", repeats)
    elif kind == "peak":
        result = measurements.measure_peak(args[0], repeats)
    elif kind == "encoding":
        result = measurements.measure_encoding(repeats)
    elif kind == "demo_eval":
        result = measurements.measure_demo_eval(repeats)
    elif kind == "image_step":
        result = measurements.measure_image_step(args[0], repeats)
    else:
        raise ValueError(f"unknown worker {spec!r}")
    result["peak_rss_mb"] = measurements.peak_rss_mb()
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


def _lazy_section():
    """The penalty every k steps (k = 0: no penalty) against plain + (penalty − plain)/k."""
    precision, jit = _PRECISION.value[0], _JIT.value[0]
    print(f"\n| case ({precision}, XLA {jit}) | penalty every | fit s/step | predicted | "
          "measured / predicted |\n|---|---:|---:|---:|---:|")
    rows = []
    for case in _CASES.value:
        times = {k: _spawn(f"lazy:{case}:{precision}:{jit}:{k}")["fit_s"]
                 for k in (0, 1, 2, 4, _LAZY_CYCLE)}
        plain, every = times[0]["median"], times[1]["median"]
        for k, measured in times.items():
            predicted = plain if k == 0 else plain + (every - plain) / k
            rows.append({"case": case, "precision": precision, "jit": jit == "true",
                         "every_steps": k, "fit_s": measured, "predicted_s": predicted,
                         "ratio": measured["median"] / predicted})
            print(f"| {case} | {'never' if k == 0 else k} | {_fmt(measured)} | "
                  f"{predicted:.3f} | {rows[-1]['ratio']:.3f} |", flush=True)
    return rows


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
    if "lazy" in sections:
        result["lazy"] = _lazy_section()
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
