"""Benchmarks the streamed image pipeline: memory against the data's size, images/s of the
pipeline alone, and the train step fed from a folder against the same step fed from memory.

    python -m benchmarks.input_pipeline          # all cases; writes benchmarks/input_pipeline.json
    python -m benchmarks.input_pipeline --cases=memory
    python -m benchmarks.input_pipeline --cases=pipeline,step --repeats=2 --batches=4  # a look

Image folders are generated once under ``--root`` (rendered Spirograph images in 10 class
subfolders, PNG at 32 px for each of ``--memory_sizes``, PNG and JPEG at 96 px) and reused.

- ``memory``: for each folder size, a fresh interpreter runs ``pretraining.train`` on
  ``configs/images.py`` (the folder through ``sources.load`` and the streaming pipeline, as
  ``invcl-train`` does; no evaluation) for ``--memory_steps`` steps and reports its peak resident
  memory (``ru_maxrss``), also at each stage. Goal: the largest folder within 1.25x the smallest.
- ``pipeline``: images/s of ``pipeline.train_dataset`` alone (read, decode, crop, flip, the α
  draws; batch 256, 100 extra draws) and of the read + decode stage alone; the median of
  ``--repeats`` runs of ``--batches`` batches after ``--warmup`` batches, with min-max.
- ``step``: seconds/step of the configs/images.py model at 32 px (ResNet-18 at 1/4 width, batch
  256, λ = 0.1) in ``model.fit``, fed by the folder pipeline and by the same decoded images held
  in memory (the same batches: both draw the order from the same seed); ``--repeats`` epochs of
  ``--step_steps`` steps after one discarded (tracing) epoch. Goal: folder within 5% of memory.

Memory numbers do not depend on other load on the machine; times do.
"""

import datetime
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks import cases  # noqa: E402
from invcl_tf import configuration, pretraining, results_io  # noqa: E402
from invcl_tf.data import draws, pipeline, sources  # noqa: E402
from invcl_tf.transforms import spirograph as spiro  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGES = configuration.import_config_file(os.path.join(REPO, "configs", "images.py"))
CASES = ("memory", "pipeline", "step")
NUM_CLASSES = 10
_GEN_BATCH = 2000
_MARKER = ".complete"  # hidden: the folder source skips it

_CASES = flags.DEFINE_list("cases", list(CASES), "Cases to run: memory, pipeline, step.")
_ROOT = flags.DEFINE_string("root", "/tmp/invcl_bench",
                            "Where the image folders are generated once and reused.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed repeats per measurement (pipeline, step).")
_OUTPUT = flags.DEFINE_string("output", os.path.join(os.path.dirname(__file__),
                                                     "input_pipeline.json"), "JSON output path.")
_MEMORY_SIZES = flags.DEFINE_list("memory_sizes", ["20000", "200000"],
                                  "Images in the 32 px PNG folders of the memory case.")
_MEMORY_STEPS = flags.DEFINE_integer("memory_steps", 20, "Train steps of each memory run.")
_MEMORY_REPEATS = flags.DEFINE_integer("memory_repeats", 1,
                                       "Fresh processes per folder size (the median is used).")
_IMAGES_96 = flags.DEFINE_integer("images_96", 5000, "Images in each 96 px folder.")
_BATCHES = flags.DEFINE_integer("batches", 20, "Batches per timed pipeline repeat.")
_WARMUP = flags.DEFINE_integer("warmup", 3, "Untimed batches before the pipeline repeats.")
_STEP_STEPS = flags.DEFINE_integer("step_steps", 5, "Train steps per timed epoch (step case).")
_CHILD = flags.DEFINE_string("memory_child", None,
                             "Internal: run one memory measurement on this folder and print "
                             "its JSON on the last line.")
_WORKDIR = flags.DEFINE_string("memory_workdir", None, "Internal: the memory child's workdir.")


# ---------------------------------------------------------------------------------------------
# Image folders


def _folder_name(fmt, size, count):
    return f"{fmt}{size}_{count}"


def generate_folder(folder, count, size, fmt):
    """``count`` rendered Spirograph images as ``fmt`` files at ``size`` px in
    ``folder/class<k>/`` (k: the decile of the target m), unless a complete one is there.

    The images are the first ``count`` of one fixed stream, so smaller folders hold a prefix
    of larger ones.
    """
    spec = {"count": count, "size": size, "format": fmt}
    marker = os.path.join(folder, _MARKER)
    if os.path.exists(marker):
        with open(marker) as f:
            if json.load(f) == spec:
                return
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    for k in range(NUM_CLASSES):
        os.makedirs(os.path.join(folder, f"class{k}"))
    ext = {"png": "png", "jpeg": "jpg"}[fmt]

    def write(image, path):
        data = (tf.io.encode_png(image) if fmt == "png"
                else tf.io.encode_jpeg(image, quality=90))
        with tf.control_dependencies([tf.io.write_file(path, data)]):
            return tf.identity(tf.size(data, out_type=tf.int64))

    name = os.path.basename(folder)
    start_time = time.perf_counter()
    lo, hi = spiro.TARGET_RANGES[0]
    for start in range(0, count, _GEN_BATCH):
        n = min(_GEN_BATCH, count - start)
        index = start // _GEN_BATCH
        targets = spiro.sample_targets([0, index], _GEN_BATCH)[:n]
        nuisance = spiro.sample_nuisance([1, index], [_GEN_BATCH])[:n]
        images = spiro.render(targets, nuisance)
        if size != images.shape[1]:
            images = tf.image.resize(images, [size, size], antialias=True)
        images = tf.image.convert_image_dtype(tf.clip_by_value(images, 0.0, 1.0), tf.uint8,
                                              saturate=True)
        m = targets.numpy()[:, 0]
        classes = np.clip(((m - lo) / (hi - lo) * NUM_CLASSES).astype(int), 0, NUM_CLASSES - 1)
        paths = [os.path.join(folder, f"class{k}", f"{start + i:07d}.{ext}")
                 for i, k in enumerate(classes)]
        ds = tf.data.Dataset.from_tensor_slices((images, paths)).map(
            write, num_parallel_calls=tf.data.AUTOTUNE)
        ds.reduce(np.int64(0), lambda total, size_: total + size_)
        done = start + n
        line = (f"generating {name}: {done:,}/{count:,} images "
                f"({time.perf_counter() - start_time:.0f} s)")
        if sys.stdout.isatty():
            print("\r" + line, end="\n" if done == count else "", flush=True)
        elif done == count or done % (10 * _GEN_BATCH) == 0:
            print(line, flush=True)
    with open(marker, "w") as f:
        json.dump(spec, f)


def _folder(fmt, size, count):
    folder = os.path.join(_ROOT.value, _folder_name(fmt, size, count))
    generate_folder(folder, count, size, fmt)
    return folder


def _folders_for(cases):
    """(format, size, count) of the folders ``cases`` read."""
    first = int(_MEMORY_SIZES.value[0])
    needed = []
    if "memory" in cases:
        needed += [("png", 32, int(c)) for c in _MEMORY_SIZES.value]
    if "pipeline" in cases:
        needed += [("png", 32, first), ("png", 96, _IMAGES_96.value),
                   ("jpeg", 96, _IMAGES_96.value)]
    if "step" in cases:
        needed += [("png", 32, first)]
    return list(dict.fromkeys(needed))


def images_config(folder, size):
    """configs/images.py on ``folder`` at ``size`` px."""
    config = IMAGES.get_config()
    config.dataset.name = "folder"
    config.dataset.path = folder
    config.dataset.image_size = size
    return config


# ---------------------------------------------------------------------------------------------
# Memory (one fresh interpreter per folder)


def _rss_mib():
    """(peak, current) resident memory of this process in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    current = float("nan")
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                current = int(line.split()[1]) / 1024
    return peak, current


class _StopAfter(keras.callbacks.Callback):
    def __init__(self, steps, mark):
        super().__init__()
        self.steps, self.mark = steps, mark

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations)
        if step == 1:
            self.mark("first_step")
        if step >= self.steps:
            self.model.stop_training = True


def memory_child(folder, steps, workdir):
    """Trains ``steps`` steps on ``folder`` as ``invcl-train`` does; returns the stages'
    peak and current RSS (MiB) and times."""
    start = time.perf_counter()
    stages, info = {}, {}

    def mark(name):
        peak, current = _rss_mib()
        stages[name] = {"peak_mib": peak, "rss_mib": current,
                        "seconds": time.perf_counter() - start}

    mark("imports")
    config = images_config(folder, 32)
    config.eval.every_epochs = 0  # no in-training probe: the evaluation is not measured
    load, build = sources.load, pretraining.build_model

    def loading(config_):  # instruments the calls train() makes; the library is unchanged
        data = load(config_)
        info["train_examples"] = len(data.train_x)
        info["test_examples"] = len(data.test_x)
        mark("load")
        return data

    def building(*args, **kwargs):
        model = build(*args, **kwargs)
        mark("build")
        return model

    sources.load, pretraining.build_model = loading, building
    try:
        model = pretraining.train(config, workdir, verbose=0,
                                  extra_callbacks=[_StopAfter(steps, mark)])
    finally:
        sources.load, pretraining.build_model = load, build
    mark("end")
    info["steps"] = int(model.optimizer.iterations)
    peak, _ = _rss_mib()
    return {"folder": folder, "peak_rss_mib": peak, "stages": stages, **info}


def _memory_run(count):
    """One fresh interpreter training on the ``count``-image folder: its JSON report."""
    folder = _folder("png", 32, count)
    workdir = os.path.join(_ROOT.value, "runs", f"memory_{count}")
    shutil.rmtree(workdir, ignore_errors=True)
    env = dict(os.environ, TMPDIR=_scratch(), PYTHONPATH=os.pathsep.join(
        [REPO, *filter(None, [os.environ.get("PYTHONPATH")])]))
    cmd = [sys.executable, "-m", "benchmarks.input_pipeline", f"--memory_child={folder}",
           f"--memory_steps={_MEMORY_STEPS.value}", f"--memory_workdir={workdir}"]
    print(f"memory: training {_MEMORY_STEPS.value} steps on {folder} in a fresh process",
          flush=True)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    shutil.rmtree(workdir, ignore_errors=True)
    if proc.returncode != 0:
        raise RuntimeError(f"memory run on {folder} failed:\n{proc.stderr[-4000:]}")
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row.update(images=count, wall_seconds=wall)
    return row


def run_memory():
    sizes = [int(c) for c in _MEMORY_SIZES.value]
    rows = []
    for repeat in range(_MEMORY_REPEATS.value):  # sizes interleaved: drift hits all alike
        for count in sizes:
            rows.append({"repeat": repeat, **_memory_run(count)})
    print("\n### Peak resident memory of a short training run (configs/images.py, 32 px PNG, "
          f"{_MEMORY_STEPS.value} steps)\n")
    stage_names = ("imports", "load", "build", "first_step", "end")
    print("| images | train split | " + " | ".join(f"peak after {s} (MiB)" for s in stage_names)
          + " | RSS after load (MiB) | peak RSS (MiB) |")
    print("|" + "---:|" * (4 + len(stage_names)))
    for row in rows:
        stages = row["stages"]
        peaks = " | ".join(f"{stages[s]['peak_mib']:.0f}" if s in stages else "-"
                           for s in stage_names)
        print(f"| {row['images']:,} | {row['train_examples']:,} | {peaks} | "
              f"{stages['load']['rss_mib']:.0f} | {row['peak_rss_mib']:.0f} |")
    medians = {count: statistics.median(r["peak_rss_mib"] for r in rows if r["images"] == count)
               for count in sizes}
    ratio = medians[sizes[-1]] / medians[sizes[0]]
    verdict = "meets" if ratio <= 1.25 else "misses"
    which = "median " if _MEMORY_REPEATS.value > 1 else ""
    print(f"\n{which}peak RSS: " + ", ".join(f"{medians[c]:.0f} MiB at {c:,} images"
                                              for c in sizes))
    print(f"ratio {sizes[-1]:,} / {sizes[0]:,} images: {ratio:.3f} ({verdict} the goal of "
          f"<= 1.25)", flush=True)
    return {"runs": rows, "median_peak_rss_mib": {str(c): m for c, m in medians.items()},
            "ratio": ratio, "goal": 1.25, "steps": _MEMORY_STEPS.value,
            "repeats": _MEMORY_REPEATS.value}


# ---------------------------------------------------------------------------------------------
# Pipeline throughput


def _median_range(values):
    return statistics.median(values), min(values), max(values)


def _throughput(ds, batch_size):
    """images/s over ``--repeats`` consecutive runs of ``--batches`` batches, after warm-up."""
    it = iter(ds)
    for _ in range(_WARMUP.value):
        next(it)
    rates = []
    for _ in range(_REPEATS.value):
        start = time.perf_counter()
        for _ in range(_BATCHES.value):
            next(it)
        rates.append(_BATCHES.value * batch_size / (time.perf_counter() - start))
    return rates


def run_pipeline():
    count96 = _IMAGES_96.value
    folders = [("png", 32, int(_MEMORY_SIZES.value[0])), ("png", 96, count96),
               ("jpeg", 96, count96)]
    rows = []
    for fmt, size, count in folders:
        folder = _folder(fmt, size, count)
        config = images_config(folder, size)
        data = sources.load(config)
        batch = config.train.batch_size
        num_extra = configuration.extra_draws(config)
        needed = (_WARMUP.value + _REPEATS.value * _BATCHES.value) * batch
        epochs = -(-needed // len(data.train_x)) + 1
        decode = data.train_x.split.epoch(draws.fold(0, 0)).repeat().batch(
            batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
        full = pipeline.train_dataset(data.train_x, data.transform, batch, num_extra,
                                      config.seed, 0, epochs)
        print(f"pipeline: {fmt} {size} px ({len(data.train_x):,} training images)", flush=True)
        for stage, ds in (("read + decode", decode), ("train_dataset", full)):
            rates = _throughput(ds, batch)
            rows.append({"format": fmt, "size": size, "images": count,
                         "train_examples": len(data.train_x), "stage": stage,
                         "batch_size": batch, "num_extra": num_extra, "images_per_s": rates})
    print(f"\n### Input pipeline alone, batch 256 (images/s, median of {_REPEATS.value} x "
          f"{_BATCHES.value} batches, min-max)\n")
    print("| files | stage | images/s | min-max |")
    print("|---|---|---:|---:|")
    for row in rows:
        median, lo, hi = _median_range(row["images_per_s"])
        print(f"| {row['format'].upper()} {row['size']} px | {row['stage']} | {median:,.0f} | "
              f"{lo:,.0f}-{hi:,.0f} |")
    return {"rows": rows, "repeats": _REPEATS.value, "batches": _BATCHES.value,
            "warmup": _WARMUP.value}


# ---------------------------------------------------------------------------------------------
# Step time, folder against memory


def _step_seconds(config, inputs, transform, spe_full):
    """Seconds/step of each ``--step_steps``-step epoch in ``model.fit`` fed by ``inputs``,
    the first (tracing) epoch excluded."""
    keras.utils.set_random_seed(config.seed)
    model = pretraining.build_model(config, transform, spe_full)
    batch = config.train.batch_size
    num_extra = configuration.extra_draws(config)
    steps = _STEP_STEPS.value
    epochs = 1 + _REPEATS.value
    data_epochs = -(-epochs * steps // spe_full) + 1
    ds = pipeline.train_dataset(inputs, transform, batch, num_extra, config.seed, 0, data_epochs)
    timer = cases.EpochTimer()
    # StopOnNonFinite reads the loss every step, as every training run does.
    model.fit(ds, epochs=epochs, steps_per_epoch=steps, verbose=0, shuffle=False,
              callbacks=[pretraining.StopOnNonFinite(spe_full), timer])
    return [s / steps for s in timer.seconds[1:]], timer.seconds[0] / steps


def run_step():
    count = int(_MEMORY_SIZES.value[0])
    folder = _folder("png", 32, count)
    config = images_config(folder, 32)
    data = sources.load(config)
    spe = pipeline.steps_per_epoch(len(data.train_x), config.train.batch_size)
    # The same decoded images (fixed order) as one array: the in-memory path of train_dataset.
    in_memory = np.concatenate(list(data.train_x.batches(1000).as_numpy_iterator()))
    results = {}
    for feed, inputs in (("folder", data.train_x), ("memory", in_memory)):
        print(f"step: {config.model.arch} w={config.model.width_multiplier:g} batch "
              f"{config.train.batch_size} fed from {feed}", flush=True)
        per_step, first = _step_seconds(config, inputs, data.transform, spe)
        results[feed] = {"seconds_per_step": per_step, "first_epoch_seconds_per_step": first}
    folder_s = statistics.median(results["folder"]["seconds_per_step"])
    memory_s = statistics.median(results["memory"]["seconds_per_step"])
    ratio = folder_s / memory_s
    print(f"\n### Train step at 32 px, ResNet-18 w=1/4, batch 256, λ=0.1 (s/step, median of "
          f"{_REPEATS.value} epochs of {_STEP_STEPS.value} steps, min-max)\n")
    print("| fed from | s/step | min-max | images/s consumed |")
    print("|---|---:|---:|---:|")
    for feed in ("folder", "memory"):
        median, lo, hi = _median_range(results[feed]["seconds_per_step"])
        print(f"| {feed} | {median:.3f} | {lo:.3f}-{hi:.3f} | "
              f"{config.train.batch_size / median:,.0f} |")
    verdict = "meets" if ratio <= 1.05 else "misses"
    print(f"\nratio folder / memory: {ratio:.3f} ({verdict} the goal of <= 1.05)", flush=True)
    return {"feeds": results, "ratio": ratio, "goal": 1.05, "steps_per_epoch": _STEP_STEPS.value,
            "repeats": _REPEATS.value, "train_examples": len(data.train_x),
            "arch": config.model.arch, "width_multiplier": config.model.width_multiplier,
            "batch_size": config.train.batch_size, "gp_weight": config.gp.weight,
            "num_extra": config.gp.num_extra}


# ---------------------------------------------------------------------------------------------


def _scratch():
    """A temporary folder under --root: the sources' manifests stay beside the images."""
    path = os.path.join(_ROOT.value, "tmp")
    os.makedirs(path, exist_ok=True)
    return path


def _cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return platform.processor()
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main(argv):
    del argv
    if _CHILD.value:
        print(json.dumps(memory_child(_CHILD.value, _MEMORY_STEPS.value, _WORKDIR.value)))
        return
    unknown = sorted(set(_CASES.value) - set(CASES))
    if unknown:
        raise app.UsageError(f"--cases: unknown {', '.join(unknown)}; choose from "
                             f"{', '.join(CASES)}")
    if len(_MEMORY_SIZES.value) < 1:
        raise app.UsageError("--memory_sizes: give at least one size")
    os.makedirs(_ROOT.value, exist_ok=True)
    tempfile.tempdir = _scratch()
    result = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
              "command": [sys.executable, "-m", "benchmarks.input_pipeline", *sys.argv[1:]],
              "machine": {"cpu": _cpu_model(), "cpus": os.cpu_count(),
                          "platform": platform.platform(), "tensorflow": tf.__version__,
                          "keras": keras.__version__},
              "root": _ROOT.value, "case_seconds": {}}
    start = time.perf_counter()
    for fmt, size, count in _folders_for(_CASES.value):
        _folder(fmt, size, count)
    result["case_seconds"]["generate"] = time.perf_counter() - start
    runners = {"memory": run_memory, "pipeline": run_pipeline, "step": run_step}
    for case in CASES:
        if case in _CASES.value:
            start = time.perf_counter()
            result[case] = runners[case]()
            result["case_seconds"][case] = time.perf_counter() - start
            print(f"({case}: {result['case_seconds'][case]:.0f} s)\n", flush=True)
    results_io.write_json(result, _OUTPUT.value)
    print(f"wrote {_OUTPUT.value}")


if __name__ == "__main__":
    app.run(main)
