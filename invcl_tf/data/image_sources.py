"""Streaming image sources: a folder of image files or a prepared TFDS dataset.

Images are read and decoded inside tf.data, one at a time, so memory does not grow with the
number of images: a folder's file list lives in a manifest file on disk and a lookup table
built from it, never as a constant of a graph (700k paths as a constant break the 2 GB
GraphDef limit). Every image comes out as uint8 ``[S, S, 3]``: gray replicated to three
channels, alpha dropped, the shorter side resized to ``S`` and the centre cropped.
"""

import concurrent.futures
import os
import shutil
import tempfile
import warnings
import weakref
import zlib

import numpy as np
import tensorflow as tf

# The module, not the name: sources may import this module at its top without a cycle.
from invcl_tf.data import sources, subsets

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
_DECODABLE_FORMATS = {"PNG", "JPEG", "MPO", "BMP", "GIF"}  # MPO: the JPEG of many cameras
# PIL modes TF decodes to one or two channels (gray, gray + alpha).
_GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
_HOLDOUT_BUCKETS = 10_000
_LABEL_BATCH = 10_000
_STATS_BATCH = 256
_CHECK_CHUNK = 256
_LIMIT_SALTS = (subsets.LIMIT_TRAIN, subsets.LIMIT_TEST)  # train_size, test_size


def _fail(message):
    raise sources.DataError(message)


def to_square_rgb(image, size):
    """uint8 ``[H, W, C]`` (C in 1..4) -> uint8 ``[size, size, 3]``: RGB, shorter side resized
    to ``size`` (bilinear, antialiased), centre crop."""
    image = tf.convert_to_tensor(image)
    channels = tf.shape(image)[-1]
    # Gray (+ alpha) has its first channel replicated; RGBA loses its alpha.
    image = tf.cond(channels < 3, lambda: tf.tile(image[..., :1], [1, 1, 3]),
                    lambda: image[..., :3])
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    if image.shape[0] == size and image.shape[1] == size:  # e.g. CIFAR at 32: as stored
        return tf.ensure_shape(image, [size, size, 3])
    scale = size / tf.cast(tf.minimum(height, width), tf.float64)
    # max() keeps the shorter side exactly `size` whatever the rounding of the longer one.
    new_h = tf.maximum(size, tf.cast(tf.round(tf.cast(height, tf.float64) * scale), tf.int32))
    new_w = tf.maximum(size, tf.cast(tf.round(tf.cast(width, tf.float64) * scale), tf.int32))
    resized = tf.image.resize(image, tf.stack([new_h, new_w]), method="bilinear",
                              antialias=True)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    cropped = resized[top:top + size, left:left + size]
    out = tf.cast(tf.clip_by_value(tf.round(cropped), 0.0, 255.0), tf.uint8)
    return tf.ensure_shape(out, [size, size, 3])


def decode(contents, size):
    """Encoded PNG/JPEG/BMP/GIF (first frame) bytes -> uint8 ``[size, size, 3]``."""
    image = tf.io.decode_image(contents, channels=0, dtype=tf.uint8, expand_animations=False)
    return to_square_rgb(image, size)


class ImageSplit:
    """One split: images decoded to uint8 [S, S, 3] (S = decode_size), in a fixed order.

    ``num_examples`` counts the split's examples (after a size limit); ``labels`` is int64
    ``[num_examples]`` in the fixed order, or None if unlabelled.
    """

    num_examples: int
    labels: np.ndarray | None
    decode_size: int

    def subset(self, indices) -> "ImageSplit":
        """The examples at sorted ``indices`` of the fixed order; its epochs read only them."""
        raise NotImplementedError

    def ordered(self) -> tf.data.Dataset:
        """uint8 [S, S, 3] images in the fixed order, unbatched."""
        raise NotImplementedError

    def epoch(self, epoch_seed) -> tf.data.Dataset:
        """The images of one epoch, unbatched, each at most once, in an order that is a pure
        function of ``epoch_seed`` (int64 [2]; may be a symbolic tensor inside flat_map)."""
        raise NotImplementedError

    def epoch_rows(self, epoch_seed, batch_size, rows):
        """Rows ``[start, start + count)`` of each whole ``batch_size`` batch of ``epoch``, as
        uint8 ``[count, S, S, 3]`` batches: one worker's share of the global batch.

        This default reads and decodes every row (a stream has no random access); a source
        that can read by index decodes only its share.
        """
        start, count = rows
        return self.epoch(epoch_seed).batch(batch_size, drop_remainder=True).map(
            lambda x: x[start:start + count])


class _IndexedSplit(ImageSplit):
    """A split read by index: an epoch is a seeded permutation of the indices, and a worker's
    share of each batch reads and decodes only its own examples."""

    def _read(self, index):
        """uint8 ``[S, S, 3]``: the image at ``index`` (int64 scalar tensor)."""
        raise NotImplementedError

    def _images(self, indices):
        return indices.map(self._read, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def ordered(self):
        return self._images(tf.data.Dataset.range(self.num_examples))

    def _order(self, epoch_seed):
        seed = tf.convert_to_tensor(epoch_seed, tf.int64)
        return tf.argsort(tf.random.stateless_uniform([self.num_examples], seed))

    def epoch(self, epoch_seed):
        return self._images(tf.data.Dataset.from_tensor_slices(self._order(epoch_seed)))

    def subset(self, indices):
        """The examples at sorted ``indices`` of the fixed order, as a split of their own."""
        return _IndexedView(self, indices)

    def epoch_rows(self, epoch_seed, batch_size, rows):
        """As ``ImageSplit.epoch_rows``, reading only the share's examples."""
        start, count = rows
        steps = self.num_examples // batch_size
        order = tf.reshape(self._order(epoch_seed)[:steps * batch_size], [steps, batch_size])
        mine = tf.reshape(order[:, start:start + count], [-1])
        return self._images(tf.data.Dataset.from_tensor_slices(mine)).batch(
            count, drop_remainder=True)


class _IndexedView(_IndexedSplit):
    """Some examples of an indexed split: example ``i`` is the parent's ``indices[i]``."""

    def __init__(self, parent, indices):
        indices = np.asarray(indices, np.int64)
        self.num_examples = len(indices)
        self.labels = None if parent.labels is None else parent.labels[indices]
        self.decode_size = parent.decode_size
        self._parent = parent
        self._indices = indices  # int64: 8 bytes an example in the graph, never paths

    def _read(self, index):
        return self._parent._read(tf.gather(tf.constant(self._indices), index))


class _FolderSplit(_IndexedSplit):
    """Files listed in a manifest (one path a line) and read by index through a lookup table.

    The manifest's temporary folder goes when the split is garbage-collected, or at exit.
    """

    def __init__(self, paths, labels, decode_size):
        self.num_examples = len(paths)
        self.labels = labels
        self.decode_size = decode_size
        self._dir = tempfile.mkdtemp(prefix="invcl-images-")
        weakref.finalize(self, shutil.rmtree, self._dir, ignore_errors=True)
        self.manifest = os.path.join(self._dir, "manifest.txt")
        with open(self.manifest, "wb") as f:
            f.writelines(os.fsencode(path) + b"\n" for path in paths)
        # The table's serialised form is its initializer (the manifest's name), not its
        # contents, so datasets that use it stay small however many files there are.
        self._table = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                self.manifest, tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER, tf.string,
                tf.lookup.TextFileIndex.WHOLE_LINE, vocab_size=self.num_examples),
            default_value="")

    def _read(self, index):
        path = self._table.lookup(tf.cast(index, tf.int64))
        return decode(tf.io.read_file(path), self.decode_size)


class _ArrayRecordSplit(_IndexedSplit):
    """A TFDS split stored as ArrayRecord (``tfds build --file_format=array_record``): records
    are read by index through TFDS's data source, parsed and decoded in the graph.

    Random access is what lets a worker of a multi-worker run read only its share; the
    records' bytes come through ``tf.numpy_function`` (the data source is a Python object),
    so these datasets live in the process that made them, as every training input does here.
    """

    def __init__(self, source, features, image_key, num_examples, labels, decode_size):
        import tensorflow_datasets as tfds

        self.num_examples = num_examples
        self.labels = labels
        self.decode_size = decode_size
        self._source = source
        self._feature = features[image_key]
        self._key = image_key
        self._parser = tfds.features.FeaturesDict({image_key: self._feature})
        self._skip = {image_key: tfds.decode.SkipDecoding()}

    def _record(self, index):
        return np.bytes_(self._source[int(index)])

    def _read(self, index):
        raw = tf.ensure_shape(tf.numpy_function(self._record, [index], tf.string), [])
        encoded = self._parser.deserialize_example(raw, decoders=self._skip)[self._key]
        return to_square_rgb(self._feature.decode_example(encoded), self.decode_size)


class _TfdsStreamSplit(ImageSplit):
    """A TFDS split in TFRecord files, read in its stored order; epochs stream it through a
    seeded buffer.

    The buffer holds the images still encoded (a CIFAR image is ~2.5 kB as PNG, 3 kB decoded,
    an STL-10 one 27 kB decoded): they are decoded after the shuffle, in parallel, so a buffer
    as large as the split fills in a fraction of the time decoding would take.
    """

    def __init__(self, builder, split, image_key, keep, decode_size, shuffle_buffer,
                 num_examples, labels):
        self.num_examples = num_examples
        self.labels = labels
        self.decode_size = decode_size
        self._builder, self._split, self._image_key = builder, split, image_key
        # keep: sorted positions (in the stored order) of the records this split holds, or
        # None for all; filtered before any shuffle, so an epoch never sees the others.
        self._keep, self._buffer = keep, shuffle_buffer

    def subset(self, indices):
        """The examples at sorted ``indices`` of the fixed order, as a split of their own."""
        indices = np.asarray(indices, np.int64)
        keep = indices if self._keep is None else self._keep[indices]
        labels = None if self.labels is None else self.labels[indices]
        return _TfdsStreamSplit(self._builder, self._split, self._image_key, keep,
                                self.decode_size, self._buffer, len(indices), labels)

    def _encoded(self):
        import tensorflow_datasets as tfds

        # Only the image is read, and left encoded: other features (masks, second images)
        # would cost time, and decoding waits until after the shuffle.
        key = self._image_key
        only_image = tfds.decode.PartialDecoding({key: True}, decoders={
            key: tfds.decode.SkipDecoding()})
        ds = self._builder.as_dataset(split=self._split, shuffle_files=False,
                                      decoders=only_image)
        if self._keep is not None:
            ds = _kept(ds, self._keep)
        return ds.map(lambda ex: ex[key])

    def _decoded(self, encoded):
        feature = self._builder.info.features[self._image_key]
        return encoded.map(lambda b: to_square_rgb(feature.decode_example(b), self.decode_size),
                           num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def ordered(self):
        return self._decoded(self._encoded())

    def epoch(self, epoch_seed):
        seed = tf.convert_to_tensor(epoch_seed, tf.int64)
        op_seed = tf.random.stateless_uniform([], seed, minval=None, maxval=None,
                                              dtype=tf.int64)
        # Built inside a function graph so _shuffled can clear that graph's seed.
        return tf.data.Dataset.from_tensors(op_seed).flat_map(self._shuffled)

    def epoch_rows(self, epoch_seed, batch_size, rows):
        """As ``ImageSplit.epoch_rows``: every record is read (TFRecord files have no random
        access), but only the share's images are decoded. Prepared as ArrayRecord, a dataset
        is read by index and each worker reads only its share."""
        start, count = rows
        seed = tf.convert_to_tensor(epoch_seed, tf.int64)
        op_seed = tf.random.stateless_uniform([], seed, minval=None, maxval=None,
                                              dtype=tf.int64)
        share = tf.data.Dataset.from_tensors(op_seed).flat_map(
            lambda s: self._shuffled(s, decode=False)).batch(
                batch_size, drop_remainder=True).map(lambda x: x[start:start + count])
        return self._decoded(share.unbatch()).batch(count, drop_remainder=True)

    @tf.autograph.experimental.do_not_convert  # plain graph code; TFDS's readers defeat it
    def _shuffled(self, op_seed, decode=True):
        # Dataset.shuffle pairs its seed with the graph-level seed (tf.random.set_seed), which
        # would tie the order to process state; cleared, the pair is (TF's default, op_seed).
        graph = tf.compat.v1.get_default_graph()
        outer, graph.seed = graph.seed, None
        try:
            encoded = self._encoded().shuffle(self._buffer, seed=op_seed,
                                              reshuffle_each_iteration=False)
            return self._decoded(encoded) if decode else encoded
        finally:
            graph.seed = outer


def _kept(ds, keep):
    """The elements of ``ds`` at the sorted positions ``keep``; reading stops after the last."""
    if not len(keep):
        return ds.take(0)
    flags = np.zeros(int(keep[-1]) + 1, bool)
    flags[keep] = True
    mask = tf.constant(flags)  # one byte a record
    return ds.take(len(flags)).enumerate().filter(lambda i, _: mask[i]).map(lambda _, ex: ex)


# ---------------------------------------------------------------------------------------------
# Folder source


def _scan(root):
    """Relative (``/``-separated) paths of the image files under ``root``, sorted.

    Follows symlinked folders (each real folder once) and skips hidden files and folders
    (``.``-prefixed: macOS ``._x.jpg`` shadows are not images).
    """
    found, seen = [], set()
    for top, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(top)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel_top = os.path.relpath(top, root)
        for name in files:
            if not name.startswith(".") and name.lower().endswith(EXTENSIONS):
                rel = name if rel_top == "." else os.path.join(rel_top, name)
                found.append(rel.replace(os.sep, "/"))
    return sorted(found)


def _class_of(rels, root, shown):
    """``(class per file or None, sorted class names)``; None, None when unlabelled."""
    nested = [r for r in rels if "/" in r]
    if not nested:
        return None, None
    if len(nested) != len(rels):
        flat = next(r for r in rels if "/" not in r)
        _fail(f"--config.dataset.path: {shown} mixes images directly in it ({flat}) with images "
              f"in subfolders ({nested[0]}); put every image in a class folder (labelled) or "
              f"all directly in the folder (unlabelled)")
    classes = [r.split("/", 1)[0] for r in rels]
    return classes, tuple(sorted(set(classes)))


def _indices(classes, names):
    lookup = {name: i for i, name in enumerate(names)}
    return np.array([lookup[c] for c in classes], np.int64)


def _in_holdout(rel, fraction):
    # crc32 of the path alone: a file keeps its split when other files come or go.
    bucket = zlib.crc32(os.fsencode(rel)) % _HOLDOUT_BUCKETS
    return bucket < fraction * _HOLDOUT_BUCKETS


def _channel_kind(path, shown):
    """'gray' or 'rgb': the channels TF will decode ``path`` to, from its header alone."""
    from PIL import Image  # deferred: only folder sources with check_files need PIL

    try:
        with warnings.catch_warnings():
            # Large images are legitimate here; PIL's bomb warning would only print.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                fmt, mode = image.format, image.mode
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        reason = (str(err).splitlines() or [type(err).__name__])[0]
        _fail(f"--config.dataset.path: {shown} is not a readable image ({reason}); remove or "
              f"replace it")
    if fmt not in _DECODABLE_FORMATS:
        _fail(f"--config.dataset.path: {shown} holds a {fmt} image despite its name; convert "
              f"it to PNG or JPEG")
    if fmt == "GIF":
        return "rgb"  # TF decodes every GIF to RGB
    if fmt == "BMP" and mode in ("P", "1"):
        # TF's BMP decoder reads palette indices as gray levels and rejects 1-bit files.
        _fail(f"--config.dataset.path: {shown} is a {'palette' if mode == 'P' else '1-bit'} "
              f"BMP, which TensorFlow cannot decode; convert it to PNG or 24-bit BMP")
    return "gray" if mode in _GRAY_MODES else "rgb"


def check_files(paths, shown):
    """Reads each file's header (no pixel decode) in parallel; raises DataError naming the
    first unreadable file, an undecodable format, or a grayscale/RGB mix.

    ``shown[i]`` is how ``paths[i]`` appears in messages. A file that is corrupt past its
    header (a truncated JPEG, say) passes and fails later, at decode time, with TF's error.
    """
    def kinds(start):
        return [_channel_kind(p, n) for p, n in zip(paths[start:start + _CHECK_CHUNK],
                                                    shown[start:start + _CHECK_CHUNK])]

    first = {}
    # Threads hide the latency of network filesystems; whole chunks per task keep their
    # overhead small on a local disk. map() yields in order, so an error names the first bad
    # file of the fixed order.
    with concurrent.futures.ThreadPoolExecutor(min(8, 2 * (os.cpu_count() or 1))) as pool:
        chunks = pool.map(kinds, range(0, len(paths), _CHECK_CHUNK))
        try:
            for start, chunk in zip(range(0, len(paths), _CHECK_CHUNK), chunks):
                for name, kind in zip(shown[start:], chunk):
                    first.setdefault(kind, name)
                    if len(first) == 2:
                        _fail(f"--config.dataset.path: {first['gray']} is grayscale but "
                              f"{first['rgb']} is RGB; grayscale sources must be all-grayscale "
                              f"or all-RGB (convert the files of one kind)")
        finally:
            pool.shutdown(cancel_futures=True)


def _folder_source(dataset, decode_size):
    path = dataset.get("path", None)
    if not path:
        _fail("--config.dataset.path: not set; pass --config.dataset.path=DIR, the folder of "
              "images")
    if not os.path.exists(path):
        _fail(f"--config.dataset.path: {path} does not exist; pass the folder of images")
    if not os.path.isdir(path):
        _fail(f"--config.dataset.path: {path} is not a directory; pass the folder of images")
    root = os.path.abspath(path)
    exts = ", ".join(EXTENSIONS)
    train_root = os.path.join(root, "train")

    if os.path.isdir(train_root):
        test_root = os.path.join(root, "test")
        if not os.path.isdir(test_root):
            _fail(f"--config.dataset.path: {path} has a train/ folder but no test/ folder "
                  f"beside it; a train/ folder needs a test/ folder next to it")
        splits = []
        for sub, split_root in (("train", train_root), ("test", test_root)):
            rels = _scan(split_root)
            if not rels:
                _fail(f"--config.dataset.path: {path}/{sub} holds no image files ({exts})")
            classes, names = _class_of(rels, split_root, f"{path}/{sub}")
            splits.append((sub, [f"{sub}/{r}" for r in rels], classes, names))
        (_, _, _, train_names), (_, _, _, test_names) = splits
        if (train_names is None) != (test_names is None):
            labelled = "train" if train_names is not None else "test"
            _fail(f"--config.dataset.path: {path}/{labelled} has class folders but the other "
                  f"split has its images directly in it; lay out train/ and test/ alike")
        if train_names != test_names:
            only_train = sorted(set(train_names) - set(test_names))
            only_test = sorted(set(test_names) - set(train_names))
            _fail(f"--config.dataset.path: train/ and test/ have different class folders "
                  f"(only in train: {', '.join(only_train) or '-'}; only in test: "
                  f"{', '.join(only_test) or '-'}); give both the same class folders")
        class_names = train_names
        parts = [(rels, classes) for _, rels, classes, _ in splits]
    else:
        rels = _scan(root)
        if not rels:
            _fail(f"--config.dataset.path: no image files ({exts}) in {path} or its subfolders")
        classes, class_names = _class_of(rels, root, path)
        fraction = dataset.get("holdout_fraction", 0.1)
        held = [_in_holdout(r, fraction) for r in rels]
        parts = []
        for want in (False, True):
            keep = [i for i, h in enumerate(held) if h == want]
            if not keep:
                which = "test" if want else "train"
                _fail(f"--config.dataset.holdout_fraction: {fraction} leaves the {which} split "
                      f"of the {len(rels)} images in {path} empty; choose a fraction that "
                      f"leaves images on both sides, or add {path}/train and {path}/test")
            parts.append(([rels[i] for i in keep],
                          None if classes is None else [classes[i] for i in keep]))

    limits = (dataset.get("train_size", None), dataset.get("test_size", None))
    chosen = []
    for (rels, classes), limit, salt in zip(parts, limits, _LIMIT_SALTS):
        labels = None if classes is None else _indices(classes, class_names)
        keep = subsets.draw(len(rels), limit, labels, salt)
        chosen.append(([rels[i] for i in keep], None if labels is None else labels[keep]))
    for rels, _ in chosen:
        bad = next((r for r in rels if "\n" in r or "\r" in r), None)
        if bad is not None:
            _fail(f"--config.dataset.path: the file name {bad!r} holds a line break; rename it")
    if dataset.get("check_files", True):
        every = [r for rels, _ in chosen for r in rels]
        check_files([os.path.join(root, r) for r in every], [f"{path}/{r}" for r in every])
    train, test = (_FolderSplit([os.path.join(root, r) for r in rels], labels, decode_size)
                   for rels, labels in chosen)
    return train, test, class_names


# ---------------------------------------------------------------------------------------------
# TFDS source


def _split_info(builder, name, split, field):
    splits = builder.info.splits
    if not splits:
        return  # splits unknown (a mocked builder); as_dataset judges the name
    try:
        splits[split]  # accepts slices too: "train[:90%]"
    except (KeyError, ValueError) as err:
        raise sources.DataError(
            f"--config.dataset.{field}: {name} has no split {split!r}; its splits are "
            f"{', '.join(sorted(splits))}") from err


def _check_feature(features, name, key, field, what):
    if key not in features:
        _fail(f"--config.dataset.{field}: {name} has no feature {key!r}; its features are "
              f"{', '.join(features)}")
    info = features[key].get_tensor_info()
    if what == "image" and (info.tf_dtype != tf.uint8 or len(info.shape) != 3):
        _fail(f"--config.dataset.{field}: feature {key!r} of {name} is not an image "
              f"(uint8 [H, W, C]); its features are {', '.join(features)}")
    if what == "label" and (not info.tf_dtype.is_integer or len(info.shape) != 0):
        _fail(f"--config.dataset.{field}: feature {key!r} of {name} is not an integer label; "
              f"name an integer feature, or none for unlabelled data")


def _tfds_source(dataset, decode_size, name):
    import tensorflow_datasets as tfds  # deferred: folder runs need no TFDS import

    data_dir = dataset.get("data_dir", None)
    where = data_dir or "the default TFDS data_dir (~/tensorflow_datasets)"
    missing = (f"--config.dataset.data_dir: no prepared {name} in {where}. On a machine with "
               f"internet run `tfds build {name} --data_dir=DIR`, copy DIR here and pass "
               f"--config.dataset.data_dir=DIR")
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as err:
        raise sources.DataError(missing + f" (or fix --config.dataset.name: TFDS knows no "
                                f"dataset {name!r})") from err
    image_key = dataset.get("image_key", "image")
    label_key = dataset.get("label_key", "label") or None
    features = builder.info.features
    _check_feature(features, name, image_key, "image_key", "image")
    if label_key is not None:
        _check_feature(features, name, label_key, "label_key", "label")
    class_names = None
    if label_key is not None and isinstance(features[label_key], tfds.features.ClassLabel):
        class_names = tuple(features[label_key].names)

    array_record = _array_record_format(builder)
    out = []
    for (field, default, size_field), salt in zip((("train_split", "train", "train_size"),
                                                   ("test_split", "test", "test_size")),
                                                  _LIMIT_SALTS):
        split = dataset.get(field, default)
        _split_info(builder, name, split, field)
        limit = dataset.get(size_field, None)
        try:
            if array_record is not None:
                made = _array_record_split(builder, split, array_record, image_key, label_key,
                                           decode_size)
            else:
                made = _stream_split(builder, split, image_key, label_key, decode_size,
                                     dataset.get("shuffle_buffer", 10_000))
        except (AssertionError, FileNotFoundError) as err:  # TFDS's "not generated"
            raise sources.DataError(missing) from err
        if limit is not None and limit < made.num_examples:  # drawn, not the stored order
            made = made.subset(subsets.draw(made.num_examples, limit, made.labels, salt))
        if made.num_examples == 0:
            _fail(f"--config.dataset.{field}: split {split!r} of {name} holds no examples")
        out.append(made)
    return out[0], out[1], class_names


def _array_record_format(builder):
    """The ArrayRecord file format if the prepared dataset has it (random access), else None."""
    import tensorflow_datasets as tfds

    info = builder.info
    formats = [info.file_format, *(getattr(info, "alternative_file_formats", None) or ())]
    wanted = tfds.core.FileFormat.ARRAY_RECORD
    return wanted if wanted in formats else None


def _stream_split(builder, split, image_key, label_key, decode_size, shuffle_buffer):
    import tensorflow_datasets as tfds

    # The pass decodes the label only (or nothing): it reads records, not images.
    decoders = (tfds.decode.PartialDecoding({label_key: True}) if label_key is not None
                else {image_key: tfds.decode.SkipDecoding()})
    ds = builder.as_dataset(split=split, shuffle_files=False, decoders=decoders)
    labels = None
    if label_key is not None:
        labels = _collect(ds.map(lambda ex: ex[label_key]))
        count = len(labels)
    else:
        count = int(ds.cardinality())
        if count < 0:  # unknown: count the (undecoded) records once
            count = int(ds.reduce(np.int64(0), lambda n, _: n + 1))
    return _TfdsStreamSplit(builder, split, image_key, None, decode_size, shuffle_buffer, count,
                            labels)


def _array_record_split(builder, split, file_format, image_key, label_key, decode_size):
    import tensorflow_datasets as tfds

    # The data source opens its files lazily: a missing one would fail mid-epoch.
    for instruction in builder.info.splits[split].file_instructions:
        if not tf.io.gfile.exists(instruction.filename):
            raise FileNotFoundError(instruction.filename)
    source = builder.as_data_source(
        split, file_format=file_format,
        deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES)
    count = len(source)
    labels = None
    if label_key is not None:
        parser = tfds.features.FeaturesDict({label_key: builder.info.features[label_key]})

        def records(indices):
            return np.array(source.__getitems__(indices.tolist()), dtype=object)

        raw = tf.data.Dataset.range(count).batch(_LABEL_BATCH).map(
            lambda indices: tf.numpy_function(records, [indices], tf.string))
        labels = _collect(raw.unbatch().map(
            lambda record: parser.deserialize_example(record)[label_key]))
    return _ArrayRecordSplit(source, builder.info.features, image_key, count, labels,
                             decode_size)


def _collect(labels):
    parts = list(labels.batch(_LABEL_BATCH).as_numpy_iterator())
    return (np.concatenate(parts) if parts else np.zeros([0])).astype(np.int64)


# ---------------------------------------------------------------------------------------------


def load_image_source(config):
    """(train, test, class_names or None) for config.dataset.name "folder" or "tfds:NAME".

    Everything that can be checked before training is checked here (missing data, layout,
    split and feature names, file headers); errors are one-line ``DataError``s.
    """
    dataset = config.dataset
    decode_size = dataset.get("decode_size", None) or dataset.get("image_size", None)
    if not decode_size or decode_size < 1:
        _fail("--config.dataset.decode_size: not set; pass the side images are decoded to, "
              "e.g. --config.dataset.decode_size=32")
    decode_size = int(decode_size)
    name = dataset.get("name", None)
    if name == "folder":
        return _folder_source(dataset, decode_size)
    if isinstance(name, str) and name.startswith("tfds:") and name[len("tfds:"):]:
        return _tfds_source(dataset, decode_size, name[len("tfds:"):])
    _fail(f"--config.dataset.name: {name!r} is not an image source; use folder or tfds:NAME")


def channel_stats(split, sample_size):
    """Per-channel mean and std, in [0, 1], of ``sample_size`` images of ``split`` (all when
    None) drawn per class (``subsets.draw``), not the first ones: a folder stores its classes
    one after the other. Float64 sums over batches, no whole-split array."""
    total = np.zeros(3)
    squares = np.zeros(3)
    count = 0
    if sample_size is not None and sample_size < split.num_examples:
        split = split.subset(subsets.draw(split.num_examples, sample_size, split.labels,
                                          subsets.STATS))
    for batch in split.ordered().batch(_STATS_BATCH).as_numpy_iterator():
        pixels = batch.reshape(-1, 3).astype(np.float64) / 255.0
        total += pixels.sum(0)
        squares += np.square(pixels).sum(0)
        count += len(pixels)
    if not count:
        raise ValueError("channel_stats needs at least one image")
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - np.square(mean), 0.0))
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)
