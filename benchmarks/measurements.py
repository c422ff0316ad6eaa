"""The measurements ``benchmarks.run`` spawns, one per process: each returns a dict of
figures (``summary`` of repeated values). They import TensorFlow; the parent process does not.
"""

import os
import resource
import statistics
import tempfile
import time

_ENCODE_BATCH = 500  # eval.batch_size of the configs
_ENCODE_INPUTS = 2_000
_ENCODE_VIEWS = 10  # the demo's largest M


def summary(values):
    """``{"median", "min", "max", "values"}`` of a list of numbers."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "values": list(values)}


def peak_rss_mb():
    """This process's peak resident memory, MB."""
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


def measure_step(case, precision, jit, gp_weight, repeats, steps_per_epoch, every_steps=1):
    """Seconds per step inside ``fit`` (whole epochs) and, for the penalty on every step, on a
    fixed batch."""
    from benchmarks import cases
    from invcl_tf import distribute, pretraining
    from invcl_tf.data import sources

    result = {}
    if every_steps == 1:
        step, batch = cases.fixed_batch_step(case, precision, gp_weight, jit)
        result["fixed_batch_s"] = summary(_timed(lambda: float(step(batch)["loss"]), repeats))

    distribute.set_precision(precision)
    config = cases.config_for(case, precision, gp_weight, jit, every_steps)
    config.dataset.train_size = steps_per_epoch * config.train.batch_size
    config.train.epochs = repeats + 1
    data = sources.load(config)
    model = pretraining.build_model(config, data.transform, steps_per_epoch)
    timer = cases.EpochTimer()
    pretraining.fit(model, config, data.train_x, data.transform, callbacks=[timer], verbose=0)
    result["fit_s"] = summary([s / steps_per_epoch for s in timer.seconds[1:]])
    return result


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
    from invcl_tf.data import draws
    from invcl_tf.transforms import spirograph as spiro

    config, model = _quarter_model()
    targets = spiro.sample_targets([0, 3], _ENCODE_INPUTS).numpy()
    views = feature_averaging.ViewEncoder(model.encoder, model.transform, _ENCODE_BATCH)
    seeds = [draws.fold(0, p) for p in range(_ENCODE_VIEWS)]
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
