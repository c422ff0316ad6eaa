"""Builds a run's data from its config: inputs, labels and the differentiable transformation."""

import dataclasses

import numpy as np

from invcl_tf.errors import DataError
from invcl_tf.data import draws, subsets
from invcl_tf.transforms import spirograph
from invcl_tf.transforms import base, geometry, images

_SPLIT_TRAIN, _SPLIT_TEST, _SPLIT_PROBE = 0, 1, 2

#: name -> (normalisation mean, std)
CIFAR = {"cifar10": (images.CIFAR10_MEAN, images.CIFAR10_STD),
         "cifar100": (images.CIFAR100_MEAN, images.CIFAR100_STD)}
NAMES = ("spirograph", *CIFAR)


@dataclasses.dataclass(frozen=True)
class DataBundle:
    """Everything the trainer and the evaluator need to know about a dataset.

    ``train_x``/``test_x`` are what the transform's ``prepare_view``/``apply`` take (Spirograph:
    target vectors; CIFAR: uint8 images; a user's images: ``StreamedImages``); ``train_y``/
    ``test_y`` the probe's labels (None when unlabelled); ``task`` "regression",
    "classification" or "unlabelled" (only the label-free metrics); ``label_names`` names the
    targets or the classes;
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
    base = draws.fold(seed, draws.STREAM_DATA)
    train = spirograph.sample_targets(draws.fold(base, _SPLIT_TRAIN), train_size).numpy()
    test = spirograph.sample_targets(draws.fold(base, _SPLIT_TEST), test_size).numpy()
    return train, test


class GeneratedTargets:
    """Spirograph's training targets as the function of the seed they are: drawn again inside
    the training graph (``in_graph``), so they never become a constant of it, and as a NumPy
    array where the evaluation reads them. ``[:n]`` keeps the first ``n``."""

    def __init__(self, seed, size, limit=None):
        self.seed = seed
        self.size = int(size)
        self.limit = self.size if limit is None else min(int(limit), self.size)
        self._array = None

    def __len__(self):
        return self.limit

    def in_graph(self):
        """The targets as ops of the graph being built (a stateless draw, cheap to repeat)."""
        base = draws.fold(self.seed, draws.STREAM_DATA)
        return spirograph.sample_targets(draws.fold(base, _SPLIT_TRAIN),
                                         self.size)[:self.limit]

    def __array__(self, dtype=None, copy=None):
        if self._array is None:
            self._array = self.in_graph().numpy()
        return self._array if dtype is None else self._array.astype(dtype)

    def __getitem__(self, index):
        if isinstance(index, slice) and index.start in (None, 0) and index.step in (None, 1):
            stop = self.limit if index.stop is None else min(index.stop, self.limit)
            return GeneratedTargets(self.seed, self.size, stop)
        return np.asarray(self)[index]


def select(x, y, indices):
    """``(x, y)`` at the sorted ``indices``; a prefix stays a prefix (Spirograph's targets
    stay generated in the graph), a subset of ``StreamedImages`` reads only its images."""
    indices = np.asarray(indices, np.int64)
    if len(indices) == len(x):
        return x, y
    if np.array_equal(indices, np.arange(len(indices))):
        return x[:len(indices)], None if y is None else y[:len(indices)]
    return x[indices], None if y is None else np.asarray(y)[indices]


def draw_subset(x, y, size, drawn, salt):
    """``size`` examples of ``(x, y)``: the first ones unless ``drawn`` (Spirograph's i.i.d.
    targets, whose order carries nothing), else drawn by ``subsets.draw``, stratified by
    ``y``, so a class stored last is not left out."""
    indices = (subsets.draw(len(x), size, y, salt) if drawn
               else np.arange(min(int(size), len(x))))
    return select(x, y, indices)


def spirograph_probe_targets(seed, size):
    """Probe-train target vectors from their own stream, independent of the pretraining ones."""
    base = draws.fold(seed, draws.STREAM_DATA)
    return spirograph.sample_targets(draws.fold(base, _SPLIT_PROBE), size).numpy()


def cifar_source(config):
    """CIFAR's TFDS splits as streamed image splits ``(train, test, class_names)``.

    Read in TFDS's order, at most ``dataset.train_size``/``test_size`` examples, never held
    whole; each epoch's order comes from a shuffle buffer as large as the training split, so
    it is a uniform permutation. Never downloads: without the prepared data it raises a
    ``DataError`` naming the fix.
    """
    import ml_collections

    from invcl_tf.data import image_sources  # deferred: Spirograph runs need no TFDS import

    dataset = config.dataset
    view = ml_collections.ConfigDict({"dataset": {
        "name": f"tfds:{dataset.name}", "data_dir": dataset.data_dir, "image_key": "image",
        "label_key": "label", "train_split": "train", "test_split": "test",
        "train_size": dataset.train_size, "test_size": dataset.test_size,
        "decode_size": images.IMAGE_SIZE, "image_size": images.IMAGE_SIZE,
        "shuffle_buffer": dataset.train_size}})
    return image_sources.load_image_source(view)


def is_image_source(name):
    """Whether ``dataset.name`` names a user's images: ``folder`` or ``tfds:NAME``."""
    return name == "folder" or name.startswith("tfds:")


class StreamedImages:
    """A split of an image source, read in its fixed order when needed, never held whole.

    Stands where the in-memory sources have an array: ``len``, prefixes ``[:n]``, sorted index
    arrays ``[indices]`` (a subset that training and evaluation read alone) and
    ``batches(batch_size)`` for the evaluation; ``split`` for the training pipeline.
    """

    def __init__(self, split):
        self.split = split

    def __len__(self):
        return self.split.num_examples

    def __getitem__(self, index):
        if isinstance(index, slice) and index.start in (None, 0) and index.step in (None, 1):
            stop = len(self) if index.stop is None else min(index.stop, len(self))
            return self if stop == len(self) else self[np.arange(stop)]
        indices = np.asarray(index)
        if indices.ndim != 1 or indices.dtype.kind not in "iu" or np.any(np.diff(indices) <= 0):
            raise TypeError("StreamedImages takes prefixes images[:n] or sorted, distinct "
                            "index arrays images[indices]")
        if len(indices) and not 0 <= indices[0] <= indices[-1] < len(self):
            raise IndexError(f"indices outside the {len(self)} images of the split")
        return StreamedImages(self.split.subset(indices))

    def batches(self, batch_size):
        """uint8 image batches in the split's fixed order (the last one may be smaller)."""
        return self.split.ordered().batch(batch_size)


def _image_transform(config, mean, std, input_size):
    dataset = config.dataset
    if config.gp.covers == "color":  # the paper's: crop and flip in the pipeline
        return images.ImageTransform(mean, std, strength=dataset.color_strength,
                                     image_size=dataset.image_size)
    # The crop, flip and any rotation and shift move into the step, before the colour.
    colour = images.ImageTransform(mean, std, strength=dataset.color_strength, crop=False,
                                   flip=False, image_size=dataset.image_size)
    warp = geometry.GeometricTransform(input_size, dataset.image_size,
                                       rotation=dataset.rotation, shift=dataset.shift)
    return base.Composed(warp, colour)


def transform_for(config):
    """The run's transformation and the shape of one input it takes (no data loaded)."""
    name = config.dataset.name
    if name == "spirograph":
        ranges = spirograph.NUISANCE_RANGES
        if config.dataset.rotation or config.dataset.shift:  # the geometric variant
            ranges = spirograph.geometric_ranges(config.dataset.rotation, config.dataset.shift)
        return spirograph.SpirographTransform(ranges), (len(spirograph.TARGET_NAMES),)
    if name in CIFAR:
        mean, std = CIFAR[name]
        transform = _image_transform(config, mean, std, images.IMAGE_SIZE)
        return transform, (images.IMAGE_SIZE, images.IMAGE_SIZE, 3)
    if is_image_source(name):
        if config.dataset.mean is None or config.dataset.std is None:
            raise DataError("--config.dataset.mean/std: not known before the data is loaded; "
                            "load it with invcl_tf.data.sources.load(config) first")
        decode = config.dataset.decode_size or config.dataset.image_size
        return (_image_transform(config, config.dataset.mean, config.dataset.std, decode),
                (decode, decode, 3))
    raise DataError(f"--config.dataset.name: unknown dataset {name!r}; choose one of "
                    f"{', '.join(NAMES)}, folder or tfds:NAME")


def _eval_variants(transform):
    return {"untransformed": transform.variant(crop=False, flip=False, p_jitter=0.0, p_gray=0.0),
            "color_only": transform.variant(crop=False, flip=False)}


def _load_images(config):
    """A user's image source; fills in ``dataset.decode_size``, ``mean`` and ``std``."""
    from invcl_tf.data import image_sources  # deferred: TFDS and PIL only for image runs

    if config.dataset.decode_size is None:
        config.dataset.decode_size = config.dataset.image_size
    train, test, classes = image_sources.load_image_source(config)
    if config.dataset.mean is None or config.dataset.std is None:
        # Stored in the run's config, so evaluation and export use the same values.
        mean, std = image_sources.channel_stats(train, config.dataset.stats_sample)
        config.dataset.mean = tuple(round(float(v), 6) for v in mean)
        config.dataset.std = tuple(round(max(float(v), 1e-6), 6) for v in std)
    transform, _ = transform_for(config)
    task = "classification" if classes else "unlabelled"
    return DataBundle(StreamedImages(train), train.labels, StreamedImages(test), test.labels,
                      transform, task, tuple(classes or ()), _eval_variants(transform))


def load(config):
    """The ``DataBundle`` of ``config.dataset`` (Spirograph's targets sampled once per seed).

    For a user's images (``folder``, ``tfds:NAME``) the inputs are ``StreamedImages`` and
    ``dataset.decode_size``, ``mean`` and ``std`` are filled in when unset.
    """
    name = config.dataset.name
    if is_image_source(name):
        return _load_images(config)
    transform, _ = transform_for(config)
    if name == "spirograph":
        _, test = spirograph_targets(config.seed, 2, config.dataset.test_size)
        train = GeneratedTargets(config.seed, config.dataset.train_size)
        probe = None
        if config.eval.probe_targets == "fresh":  # sized as the probe's share of train_size
            probe = spirograph_probe_targets(
                config.seed, max(2, int(config.dataset.train_size * config.eval.probe_fraction)))
        return DataBundle(train, train, test, test, transform, "regression",
                          spirograph.TARGET_NAMES, probe_x=probe, probe_y=probe)
    train, test, classes = cifar_source(config)
    return DataBundle(StreamedImages(train), train.labels, StreamedImages(test), test.labels,
                      transform, "classification", classes, _eval_variants(transform))


_BACKGROUND = ("rback", "gback", "bback")


def robustness_sweeps(data, config):
    """Test-time nuisance shifts of SPEC §5: ``{sweep: [(value, transform), ...]}``, for the
    values v in ``config.eval.robustness_values`` (and the geometric sweeps' own).

    Images: colour jitter of strength v always applied (no random apply, grayscale, crop or
    flip); beyond SPEC, the whole image rotated U(−v, v) degrees for v in
    ``eval.rotation_values`` or shifted U(−v, v) times its side for v in
    ``eval.shift_values`` (bilinear, edges repeated; no colour, crop or flip). Spirograph:
    the background colours' and h's ranges shifted by v or widened by v, and in the geometric
    variant the rotation's (radians) and the shifts' (grid units).
    """
    values = config.eval.robustness_values
    if data.task == "classification":
        sweeps = {"color_strength": [
            (s, data.transform.variant(strength=s, p_jitter=1.0, p_gray=0.0, crop=False,
                                       flip=False)) for s in values]}
        still = data.transform.variant(crop=False, flip=False, p_jitter=0.0, p_gray=0.0)
        for name in ("rotation", "shift"):
            points = config.eval[f"{name}_values"]
            if points:
                sweeps[name] = [(v, base.Composed(geometry.GeometricTransform(
                    None, still.image_size, flip=False, crop=False, **{name: v}), still))
                    for v in points]
        return sweeps
    ranges = data.transform.ranges
    sweeps = {}
    groups = [("background", _BACKGROUND), ("h", ("h",))]
    if data.transform.num_params > len(spirograph.NUISANCE_NAMES):  # the geometric variant
        groups += [("rotation", ("rotation",)), ("shift", ("shift_x", "shift_y"))]
    for label, names in groups:
        for kind in ("shift", "widen"):
            sweeps[f"{label}_{kind}"] = [
                (v, spirograph.SpirographTransform(
                    spirograph.shifted_ranges(ranges, names, **{kind: v}),
                    data.transform.normalize)) for v in values]
    return sweeps
