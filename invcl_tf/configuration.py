"""A run's ``ml_collections`` config: the shared schema, its checks, and comparisons.

The config files in the repository's ``configs/`` start from ``base_config()`` and set a
dataset's protocol; they are found by path (``--config=configs/x.py``), never imported as a
package, and build on each other through ``import_config_file``.
"""

import importlib.util
import os

import ml_collections
from ml_collections import config_dict

from invcl_tf import distribute, errors, replicas
from invcl_tf.data.sources import CIFAR, NAMES as DATASETS, is_image_source
from invcl_tf.models.invclr import EXPECTATIONS
from invcl_tf.models.resnet import ARCHS, STEMS


class ConfigError(errors.UserError, ValueError):
    """A config field holds a value the run cannot use; the message names field and fix."""


PROBE_TARGETS = ("fresh", "pretraining")


def base_config():
    """The shared schema with SPEC §4/§5 defaults (Spirograph: batch 512, LARS, cosine)."""
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.distribute = "auto"  # auto | none | mirrored | multi_worker; batch_size is global

    config.dataset = ml_collections.ConfigDict()
    config.dataset.name = "spirograph"
    config.dataset.data_dir = config_dict.placeholder(str)  # a TFDS data_dir (None: default)
    config.dataset.train_size = 100_000
    config.dataset.test_size = 20_000
    # Image sources ("folder", "tfds:NAME"); see configs/images.py.
    config.dataset.path = config_dict.placeholder(str)  # the folder of images
    config.dataset.image_key = "image"
    config.dataset.label_key = "label"
    config.dataset.train_split = "train"
    config.dataset.test_split = "test"
    config.dataset.image_size = 32  # the training resolution (crops are resized to it)
    config.dataset.decode_size = config_dict.placeholder(int)  # images decoded to this (None:
    # image_size); crops are taken from the decoded image
    config.dataset.holdout_fraction = 0.1  # a folder without train/ and test/: the test share
    config.dataset.shuffle_buffer = 10_000  # TFDS sources stream through this buffer
    config.dataset.check_files = True  # read every file's header before training
    config.dataset.color_strength = 0.5
    # Geometric nuisance: a rotation U(−rotation, rotation) degrees and shifts U(−shift, shift)
    # times the side. Spirograph: of the curve, in the renderer (its geometric variant).
    # Images: in the step's differentiable warp, with gp.covers=color+geometry.
    config.dataset.rotation = 0.0
    config.dataset.shift = 0.0
    # Normalisation; None: computed from the first stats_sample training images and stored.
    config.dataset.mean = config_dict.placeholder(tuple)
    config.dataset.std = config_dict.placeholder(tuple)
    config.dataset.stats_sample = 1000

    config.model = ml_collections.ConfigDict()
    config.model.arch = "resnet18"
    config.model.stem = "auto"  # cifar (3x3, stride 1) | imagenet (7x7/2 + max-pool) | auto
    config.model.width_multiplier = 1.0
    # Synchronised batch norm makes N replicas compute what one device would on the global
    # batch; the authors' DataParallel kept statistics per device.
    config.model.sync_bn = True

    config.train = ml_collections.ConfigDict()
    config.train.batch_size = 512
    config.train.epochs = 50
    config.train.base_lr = 1.5  # peak lr = base_lr * batch_size / 256
    config.train.warmup_epochs = 10
    config.train.momentum = 0.9
    config.train.weight_decay = 1e-6
    config.train.trust_coefficient = 1e-3
    config.train.temperature = 0.5
    config.train.jit_compile = False  # XLA measured 2x slower on CPU; try it on GPUs
    config.train.precision = "float32"  # or mixed_float16 / mixed_bfloat16
    config.train.checkpoint_every_steps = 0  # 0: at the end of every epoch only
    # Steps per call into the graph (Keras's compile argument): the host reads the logs and
    # runs the per-batch callbacks once per call, so a fast accelerator does not wait on
    # Python between steps. Must divide the steps per epoch; the results do not change.
    config.train.steps_per_execution = 1

    config.gp = ml_collections.ConfigDict()
    config.gp.weight = 0.01
    config.gp.clip = 1000.0
    config.gp.num_extra = 100
    config.gp.normalize = True
    # k: the penalty on every k-th step only, with weight k·λ (lazy regularisation); the
    # steps between are plain contrastive steps. 1: every step, as the paper.
    config.gp.every_steps = 1
    # The mean over α′: "draws" (num_extra draws per example, the authors') or "closed_form"
    # (its expectation under the transform's parameter distribution; no draws).
    config.gp.expectation = "draws"
    # Images: what the penalty differentiates. color: the colour jitter (the paper's; crop
    # and flip in the input pipeline). color+geometry: also the crop box (and any rotation and
    # shift), warped differentiably in the step from the uncropped image.
    config.gp.covers = "color"

    config.eval = ml_collections.ConfigDict()
    config.eval.num_passes = (1, 2, 3, 4, 5, 10, 20, 30)
    config.eval.probe_l2 = 1e-8
    config.eval.probe_fraction = 0.5  # probe-train size: this share of dataset.train_size
    config.eval.test_fraction = 0.5   # of the test split scores it
    # Spirograph: "fresh" probe-train targets from their own stream (the authors' eval.py
    # draws a new dataset); "pretraining" fits the probe on the pretraining targets.
    config.eval.probe_targets = "fresh"
    config.eval.nuisance_l2 = 1e-5
    config.eval.variance_copies = 10
    config.eval.batch_size = 500
    # The probes' encoder passes: float32, or mixed_bfloat16 (faster on CPUs and GPUs with
    # bf16 units; features within bf16 rounding, summed in float64 either way). The penalty
    # estimate differentiates in float32 always.
    config.eval.precision = "float32"
    config.eval.every_epochs = 10
    config.eval.monitor_size = 5000  # inputs per split for the quick in-training probe
    config.eval.robustness_values = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
    # Image datasets' geometric sweeps: whole images rotated U(−v, v) degrees, or shifted
    # U(−v, v) times the side in each direction, whatever the penalty covered in training.
    config.eval.rotation_values = (0.0, 15.0, 45.0, 90.0, 180.0)
    config.eval.shift_values = (0.0, 0.05, 0.1, 0.2)

    # invcl-report: the seeds x λ study (weights None: 0, this config's gp.weight and 0.1).
    config.report = ml_collections.ConfigDict()
    config.report.seeds = (0, 1, 2)
    config.report.weights = config_dict.placeholder(tuple)
    config.report.robustness = True  # run the test-time nuisance sweeps of every run
    return config


def extra_draws(config):
    """The α′ draws per example the input pipeline makes: ``gp.num_extra`` when the penalty
    runs and averages over draws, else 0."""
    if config.gp.weight > 0 and config.gp.expectation == "draws":
        return config.gp.num_extra
    return 0


def shrink_for_tests(config, train_size, test_size, batch_size, epochs, num_extra):
    """Turns ``config`` into a seconds-long smoke run on a tiny ResNet (``:tiny`` variants)."""
    config.dataset.train_size = train_size
    config.dataset.test_size = test_size
    config.model.arch = "resnet_tiny"
    config.model.width_multiplier = 1.0
    config.train.batch_size = batch_size
    config.train.epochs = epochs
    config.train.warmup_epochs = 1
    config.gp.num_extra = num_extra
    config.eval.num_passes = (1, 2)
    config.eval.variance_copies = 2
    config.eval.batch_size = test_size
    config.eval.every_epochs = 1
    config.eval.monitor_size = batch_size * 2
    config.eval.rotation_values = (90.0,)
    config.eval.shift_values = (0.1,)
    return config


def import_config_file(path, relative_to=None):
    """Imports a config file by path (as ``--config`` does) and returns it as a module.

    ``relative_to`` (a config file's ``__file__``) resolves ``path`` against its directory,
    so config files can build on each other without being an installed package.
    """
    if relative_to is not None:
        path = os.path.join(os.path.dirname(os.path.abspath(relative_to)), path)
    name = "invcl_config_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or not os.path.exists(path):
        raise ConfigError(f"--config: no config file at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _require(condition, field, message):
    if not condition:
        raise ConfigError(f"--config.{field}: {message}")


#: The evaluation encoder's dtype policies (``eval.precision``).
EVAL_PRECISIONS = ("float32", "mixed_bfloat16")
#: What the penalty can cover on image datasets (``gp.covers``).
COVERS = ("color", "color+geometry")


def validate(config):
    """Raises ``ConfigError`` naming the first bad field and how to fix it."""
    name = config.dataset.name
    _require(name in DATASETS or is_image_source(name), "dataset.name",
             f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}, folder "
             "(with --config.dataset.path=DIR) or tfds:NAME")
    _require(config.dataset.train_size >= 2, "dataset.train_size", "must be at least 2")
    _require(config.dataset.test_size >= 2, "dataset.test_size", "must be at least 2")
    if name in CIFAR or is_image_source(name):
        _require(config.dataset.color_strength >= 0, "dataset.color_strength",
                 "must be >= 0 (0.5 is the paper's)")
        _require(config.dataset.image_size >= 8, "dataset.image_size", "must be at least 8")
        decode = config.dataset.decode_size
        _require(decode is None or decode >= 1, "dataset.decode_size",
                 "must be >= 1, or unset (decode to image_size)")
        for field in ("mean", "std"):
            value = config.dataset[field]
            _require(value is None or len(value) == 3, f"dataset.{field}",
                     "must hold 3 values (R, G, B), or be unset to compute it from the data")
        _require(config.dataset.std is None or min(config.dataset.std) > 0, "dataset.std",
                 "must be > 0 in every channel")
    _require(config.dataset.rotation >= 0 and config.dataset.shift >= 0,
             "dataset.rotation/shift", "must be >= 0 (the half-widths of their ranges)")
    _require(config.eval.precision in EVAL_PRECISIONS, "eval.precision",
             f"unknown {config.eval.precision!r}; choose one of {', '.join(EVAL_PRECISIONS)}")
    for field in ("rotation_values", "shift_values"):
        _require(all(v >= 0 for v in config.eval[field]), f"eval.{field}",
                 "must all be >= 0 (the half-widths of the test-time ranges)")
    _require(config.gp.covers in COVERS, "gp.covers",
             f"unknown {config.gp.covers!r}; choose one of {', '.join(COVERS)}")
    if name == "spirograph":
        _require(config.gp.covers == "color", "gp.covers",
                 "Spirograph's penalty covers its renderer's nuisance; leave gp.covers=color "
                 "and add geometry with dataset.rotation / dataset.shift")
    else:
        _require(config.gp.covers == "color+geometry" or not (
            config.dataset.rotation or config.dataset.shift), "dataset.rotation/shift",
            "act on images only inside the step's warp: add --config.gp.covers=color+geometry")
    if name == "folder":
        _require(bool(config.dataset.path), "dataset.path",
                 "is required with dataset.name=folder: pass --config.dataset.path=DIR")
        _require(0 < config.dataset.holdout_fraction < 1, "dataset.holdout_fraction",
                 "must lie in (0, 1)")
    _require(config.model.stem in STEMS, "model.stem",
             f"unknown stem {config.model.stem!r}; choose one of {', '.join(STEMS)}")
    _require(config.train.checkpoint_every_steps >= 0, "train.checkpoint_every_steps",
             "must be >= 0 (0: once an epoch)")
    _require(config.train.steps_per_execution >= 1, "train.steps_per_execution",
             "must be >= 1")
    _require(config.model.arch in ARCHS, "model.arch",
             f"unknown arch {config.model.arch!r}; choose one of {', '.join(sorted(ARCHS))}")
    _require(config.model.width_multiplier > 0, "model.width_multiplier", "must be > 0")
    _require(config.train.batch_size >= 2, "train.batch_size",
             f"must be at least 2 (NT-Xent needs negatives), got {config.train.batch_size}")
    _require(config.train.batch_size <= config.dataset.train_size, "train.batch_size",
             f"{config.train.batch_size} exceeds dataset.train_size "
             f"({config.dataset.train_size}); lower it")
    _require(config.distribute in distribute.STRATEGIES, "distribute",
             f"unknown strategy {config.distribute!r}; choose one of "
             f"{', '.join(distribute.STRATEGIES)}")
    _require(config.train.precision in distribute.PRECISIONS, "train.precision",
             f"unknown precision {config.train.precision!r}; choose one of "
             f"{', '.join(distribute.PRECISIONS)}")
    _require(config.train.epochs >= 1, "train.epochs", "must be at least 1")
    _require(config.train.base_lr > 0, "train.base_lr", "must be > 0")
    _require(config.train.temperature > 0, "train.temperature", "must be > 0")
    _require(config.gp.weight >= 0, "gp.weight",
             f"must be >= 0 (0 turns the penalty off), got {config.gp.weight}")
    _require(config.gp.clip > 0, "gp.clip", "must be > 0")
    _require(config.gp.num_extra >= 1, "gp.num_extra", "must be at least 1")
    _require(config.gp.expectation in EXPECTATIONS, "gp.expectation",
             f"unknown {config.gp.expectation!r}; choose one of {', '.join(EXPECTATIONS)}")
    _require(config.gp.every_steps >= 1, "gp.every_steps",
             f"must be at least 1 (1: the penalty on every step), got {config.gp.every_steps}")
    passes = tuple(config.eval.num_passes)
    _require(len(passes) > 0 and all(int(m) >= 1 for m in passes), "eval.num_passes",
             "must be a non-empty list of integers >= 1, e.g. 1,10,30")
    _require(config.eval.probe_l2 >= 0, "eval.probe_l2", "must be >= 0")
    _require(0 < config.eval.probe_fraction <= 1, "eval.probe_fraction", "must be in (0, 1]")
    _require(0 < config.eval.test_fraction <= 1, "eval.test_fraction", "must be in (0, 1]")
    _require(config.eval.variance_copies >= 2, "eval.variance_copies", "must be at least 2")
    _require(config.eval.every_epochs >= 0, "eval.every_epochs", "must be >= 0 (0: never)")
    _require(config.eval.batch_size >= 1, "eval.batch_size", "must be at least 1")
    _require(len(config.report.seeds) >= 1, "report.seeds", "must name at least one seed")
    _require(config.report.weights is None or all(w >= 0 for w in config.report.weights),
             "report.weights", "must be λ values >= 0, e.g. 0,0.01")
    _require(config.eval.get("probe_targets", "fresh") in PROBE_TARGETS, "eval.probe_targets",
             f"must be one of {', '.join(PROBE_TARGETS)}")


def check_replicas(config, num_replicas):
    """Raises ``ConfigError`` unless ``train.batch_size`` splits equally over the replicas and
    the penalty's schedule can run on them."""
    try:
        replicas.require_even_split(config.train.batch_size, num_replicas,
                                    "--config.train.batch_size")
        replicas.require_single_for_lazy_penalty(config.gp.every_steps, num_replicas)
    except replicas.ReplicaError as err:
        raise ConfigError(str(err)) from err


def check_steps_per_execution(config, steps_per_epoch, steps_left=None):
    """Raises ``ConfigError`` unless ``train.steps_per_execution`` divides the epoch's steps
    (and ``steps_left``, those left of a resumed epoch), so calls end on epoch boundaries."""
    every = config.train.steps_per_execution
    for steps, what in ((steps_per_epoch, "of an epoch"),
                        (steps_left, "left of the resumed epoch")):
        if steps is not None and steps % every:
            divisors = [str(d) for d in range(1, steps + 1) if steps % d == 0]
            raise ConfigError(
                f"--config.train.steps_per_execution={every} does not divide the {steps} "
                f"steps {what}: choose one of {', '.join(divisors)}")
