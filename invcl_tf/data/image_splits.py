"""Image splits: the interface every image source implements (``ImageSplit``), splits read
by index (``IndexedSplit``: epochs are seeded permutations, a worker decodes only its share),
decoding to uint8 ``[S, S, 3]`` and the channel statistics for normalisation.

Images are read and decoded inside tf.data, one at a time, so memory does not grow with the
number of images. Every image comes out as uint8 ``[S, S, 3]``: gray replicated to three
channels, alpha dropped, the shorter side resized to ``S`` and the centre cropped.
"""

import numpy as np
import tensorflow as tf

from invcl_tf.data import subsets

_STATS_BATCH = 256


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


class IndexedSplit(ImageSplit):
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


class _IndexedView(IndexedSplit):
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
