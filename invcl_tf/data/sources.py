"""Builds a run's data from its config: inputs, labels and the differentiable transformation."""

import dataclasses

import numpy as np

from invcl_tf import errors
from invcl_tf.data import pipeline
from invcl_tf.transforms import spirograph
from invcl_tf.transforms import cifar

_SPLIT_TRAIN, _SPLIT_TEST, _SPLIT_PROBE = 0, 1, 2

#: name -> (normalisation mean, std)
CIFAR = {"cifar10": (cifar.CIFAR10_MEAN, cifar.CIFAR10_STD),
         "cifar100": (cifar.CIFAR100_MEAN, cifar.CIFAR100_STD)}
NAMES = ("spirograph", *CIFAR)


class DataError(errors.UserError, ValueError):
    """The data a config asks for is not available; the message says how to provide it."""


@dataclasses.dataclass(frozen=True)
class DataBundle:
    """Everything the trainer and the evaluator need to know about a dataset.

    ``train_x``/``test_x`` are what the transform's ``prepare_view``/``apply`` take (Spirograph:
    target vectors; CIFAR: uint8 images); ``train_y``/``test_y`` the probe's labels; ``task``
    "regression" or "classification"; ``label_names`` names the targets or the classes;
    ``eval_transforms`` other named transformations the evaluation reports on; ``probe_x`` and
    ``probe_y``, when given, are the probe's own training inputs (Spirograph's fresh targets),
    otherwise the probe fits on the first part of ``train_x``.
    """

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    transform: object
    task: str
    label_names: tuple
    eval_transforms: dict = dataclasses.field(default_factory=dict)
    probe_x: np.ndarray = None
    probe_y: np.ndarray = None


def spirograph_targets(seed, train_size, test_size):
    """The run's fixed train and test target vectors: a function of ``seed`` alone."""
    base = pipeline.fold(seed, pipeline.STREAM_DATA)
    train = spirograph.sample_targets(pipeline.fold(base, _SPLIT_TRAIN), train_size).numpy()
    test = spirograph.sample_targets(pipeline.fold(base, _SPLIT_TEST), test_size).numpy()
    return train, test


def spirograph_probe_targets(seed, size):
    """Probe-train target vectors from their own stream, independent of the pretraining ones."""
    base = pipeline.fold(seed, pipeline.STREAM_DATA)
    return spirograph.sample_targets(pipeline.fold(base, _SPLIT_PROBE), size).numpy()


def _arrays(ds, limit):
    # Batched reads rather than batch_size=-1: TFDS's mock data crashes on whole-split batches.
    parts = list(ds.take(limit).batch(10_000).as_numpy_iterator())
    return (np.concatenate([x for x, _ in parts]),
            np.concatenate([y for _, y in parts]).astype(np.int64))


def cifar_arrays(name, data_dir, train_size, test_size):
    """``(train_images, train_labels, test_images, test_labels, class_names)`` from TFDS.

    Reads at most ``train_size``/``test_size`` examples of each split, as uint8 images and int64
    labels. Never downloads: without the prepared data it raises a ``DataError`` naming the fix.
    """
    import tensorflow_datasets as tfds  # deferred: Spirograph runs need no TFDS import

    try:
        (train, test), info = tfds.load(name, split=["train", "test"], data_dir=data_dir,
                                        download=False, as_supervised=True, with_info=True)
    except (AssertionError, tfds.core.registered.DatasetNotFoundError) as err:
        where = data_dir or "the default TFDS data_dir (~/tensorflow_datasets)"
        raise DataError(
            f"--config.dataset.data_dir: no prepared {name} in {where}. On a machine with "
            f"internet run `tfds build {name} --data_dir=DIR`, copy DIR here and pass "
            f"--config.dataset.data_dir=DIR") from err
    return (*_arrays(train, train_size), *_arrays(test, test_size),
            tuple(info.features["label"].names))


def transform_for(config):
    """The run's transformation and the shape of one input it takes (no data loaded)."""
    name = config.dataset.name
    if name == "spirograph":
        return spirograph.SpirographTransform(), (len(spirograph.TARGET_NAMES),)
    if name in CIFAR:
        mean, std = CIFAR[name]
        transform = cifar.CifarTransform(mean, std, strength=config.dataset.color_strength)
        return transform, (cifar.IMAGE_SIZE, cifar.IMAGE_SIZE, 3)
    raise DataError(f"--config.dataset.name: unknown dataset {name!r}; choose one of "
                    f"{', '.join(NAMES)}")


def load(config):
    """The ``DataBundle`` of ``config.dataset`` (Spirograph's targets sampled once per seed)."""
    name = config.dataset.name
    transform, _ = transform_for(config)
    if name == "spirograph":
        train, test = spirograph_targets(config.seed, config.dataset.train_size,
                                         config.dataset.test_size)
        probe = None
        if config.eval.probe_targets == "fresh":  # sized as the probe's share of train_size
            probe = spirograph_probe_targets(
                config.seed, max(2, int(config.dataset.train_size * config.eval.probe_fraction)))
        return DataBundle(train, train, test, test, transform, "regression",
                          spirograph.TARGET_NAMES, probe_x=probe, probe_y=probe)
    train_x, train_y, test_x, test_y, classes = cifar_arrays(
        name, config.dataset.data_dir, config.dataset.train_size, config.dataset.test_size)
    return DataBundle(
        train_x, train_y, test_x, test_y, transform, "classification", classes,
        {"untransformed": transform.variant(crop=False, flip=False, p_jitter=0.0, p_gray=0.0),
         "color_only": transform.variant(crop=False, flip=False)})


_BACKGROUND = ("rback", "gback", "bback")


def robustness_sweeps(data, values):
    """Test-time nuisance shifts of SPEC §5: ``{sweep: [(value, transform), ...]}``.

    CIFAR: colour jitter of strength s always applied (no random apply, grayscale, crop or
    flip). Spirograph: the background colours' and h's ranges shifted by v or widened by v.
    """
    if data.task == "classification":
        return {"color_strength": [
            (s, data.transform.variant(strength=s, p_jitter=1.0, p_gray=0.0, crop=False,
                                       flip=False)) for s in values]}
    ranges = data.transform.ranges
    sweeps = {}
    for label, names in (("background", _BACKGROUND), ("h", ("h",))):
        for kind in ("shift", "widen"):
            sweeps[f"{label}_{kind}"] = [
                (v, spirograph.SpirographTransform(
                    spirograph.shifted_ranges(ranges, names, **{kind: v}),
                    data.transform.normalize)) for v in values]
    return sweeps
