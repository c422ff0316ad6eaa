"""TFDS image datasets, never downloaded: TFRecord splits streamed through a seeded shuffle
buffer, ArrayRecord splits read by index; features and splits checked before training."""

import numpy as np
import tensorflow as tf

from invcl_tf.errors import DataError
from invcl_tf.data import subsets
from invcl_tf.data.image_splits import ImageSplit, IndexedSplit, to_square_rgb

_LABEL_BATCH = 10_000
_LIMIT_SALTS = (subsets.LIMIT_TRAIN, subsets.LIMIT_TEST)  # train_size, test_size


def _fail(message):
    raise DataError(message)


class _ArrayRecordSplit(IndexedSplit):
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


def _split_info(builder, name, split, field):
    splits = builder.info.splits
    if not splits:
        return  # splits unknown (a mocked builder); as_dataset judges the name
    try:
        splits[split]  # accepts slices too: "train[:90%]"
    except (KeyError, ValueError) as err:
        raise DataError(
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


def tfds_source(dataset, decode_size, name):
    import tensorflow_datasets as tfds  # deferred: folder runs need no TFDS import

    data_dir = dataset.get("data_dir", None)
    where = data_dir or "the default TFDS data_dir (~/tensorflow_datasets)"
    missing = (f"--config.dataset.data_dir: no prepared {name} in {where}. On a machine with "
               f"internet run `pip install apache-beam && tfds build {name} --data_dir=DIR` "
               f"(the tfds command needs apache-beam), copy DIR here and pass "
               f"--config.dataset.data_dir=DIR")
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as err:
        raise DataError(missing + f" (or fix --config.dataset.name: TFDS knows no "
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
            raise DataError(missing) from err
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
