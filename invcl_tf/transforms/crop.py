"""Non-differentiable per-view augmentations: random resized crop and horizontal flip.

Both act on whole NHWC batches with a per-example random choice from one stateless seed.

The crop follows torchvision's ``RandomResizedCrop`` box sampling exactly (up to float32
rounding). The resize differs: it is ``tf.image.crop_and_resize``'s bilinear resampling, which
places the output's first and last samples on the crop's first and last pixel centres
(sample i at y0 + i·(h − 1)/(size − 1)), whereas torchvision samples at half-pixel centres
y0 + (i + 0.5)·h/size − 0.5 clamped to the crop. Both use only the crop's own pixels and agree
at the centre; positions differ by less than half an input pixel. torchvision's antialiasing
only acts when shrinking, which never happens for CIFAR (crops ≤ 32 resized to 32). The
authors resize with PIL's Lanczos filter instead of bilinear.
"""

import math

import tensorflow as tf

#: torchvision draws this many candidate boxes before falling back to a central crop.
NUM_TRIES = 10


def _check_range(value, name, lower):
    lo, hi = (float(v) for v in value)
    if not lower(lo) or not lo <= hi:
        raise ValueError(f"`{name}` must be a (lo, hi) pair with lo <= hi, got {value!r}")
    return lo, hi


def _check_batch(images):
    images = tf.convert_to_tensor(images)
    if images.shape.rank is None:
        return tf.ensure_shape(images, [None, None, None, None])
    if images.shape.rank != 4:
        raise ValueError(f"`images` must have shape [B, H, W, C], got {images.shape}")
    return images


def _fallback_box(height, width, ratio):
    """torchvision's central crop, clamped to the aspect-ratio range, as (y0, x0, h, w)."""
    in_ratio = width / height
    wide = in_ratio > ratio[1]
    tall = in_ratio < ratio[0]
    w = tf.where(wide, tf.round(height * ratio[1]), width)
    h = tf.where(tall, tf.round(width / ratio[0]), height)
    return tf.stack([tf.floor((height - h) / 2), tf.floor((width - w) / 2), h, w])


def sample_crop_boxes(seed, batch_size, height, width, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """Draws torchvision ``RandomResizedCrop`` boxes for a batch, from a stateless ``seed`` [2].

    Each example gets the first of ``NUM_TRIES`` candidates (area fraction ~ U(scale),
    log aspect ratio w/h ~ U(log ratio), w = round(√(area·r)), h = round(√(area/r))) that fits
    in the ``height`` × ``width`` image, at a uniform integer offset; when none fits, the
    central crop clamped to ``ratio``.

    Returns:
      int32 ``[batch_size, 4]`` boxes (y0, x0, h, w): rows y0 .. y0 + h − 1, columns
      x0 .. x0 + w − 1.
    """
    scale = _check_range(scale, "scale", lambda lo: lo >= 0.0)
    ratio = _check_range(ratio, "ratio", lambda lo: lo > 0.0)
    height = tf.cast(height, tf.float32)
    width = tf.cast(width, tf.float32)
    seed_area, seed_ratio, seed_offsets = (
        tf.random.experimental.stateless_fold_in(seed, salt) for salt in range(3))

    area = height * width * tf.random.stateless_uniform(
        [batch_size, NUM_TRIES], seed_area, scale[0], scale[1])
    aspect = tf.exp(tf.random.stateless_uniform(
        [batch_size, NUM_TRIES], seed_ratio, math.log(ratio[0]), math.log(ratio[1])))
    # tf.round rounds half to even, like Python's round() in torchvision.
    w = tf.round(tf.sqrt(area * aspect))
    h = tf.round(tf.sqrt(area / aspect))
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)

    # argmax returns the first maximal index: the first candidate that fits.
    first = tf.argmax(tf.cast(fits, tf.int32), axis=1, output_type=tf.int32)
    h = tf.gather(h, first, batch_dims=1)
    w = tf.gather(w, first, batch_dims=1)
    # floor(u·n) is uniform on 0 .. n − 1; the minimum guards u·n rounding up to n in float32.
    room = tf.stack([height - h, width - w], axis=-1)
    u = tf.random.stateless_uniform([batch_size, 2], seed_offsets)
    offsets = tf.minimum(tf.floor(u * (room + 1.0)), room)
    sampled = tf.concat([offsets, tf.stack([h, w], axis=-1)], axis=-1)

    fallback = _fallback_box(height, width, ratio)
    boxes = tf.where(tf.reduce_any(fits, axis=1)[:, None], sampled, fallback[None])
    return tf.cast(boxes, tf.int32)


def resize_crops(images, boxes, size=32):
    """Crops each image to its integer box (y0, x0, h, w) and resizes it to ``size`` × ``size``.

    One bilinear ``tf.image.crop_and_resize`` over the batch; output rows sample input rows
    y0 + i·(h − 1)/(size − 1), from the crop's first pixel centre to its last (see the module
    docstring for the difference from torchvision). Returns float32 ``[B, size, size, C]``.
    """
    images = _check_batch(images)
    y0, x0, h, w = tf.unstack(tf.cast(boxes, tf.float32), axis=-1)
    # Float32 rounding can put the last sample a hair past the image's last row or column,
    # where crop_and_resize would write its extrapolation value (0) over the whole output row;
    # a replicated edge row and column make such samples read the edge pixel instead.
    padded = tf.pad(images, [[0, 0], [0, 1], [0, 1], [0, 0]], mode="SYMMETRIC")
    shape = tf.shape(padded)
    last_row = tf.cast(shape[1] - 1, tf.float32)
    last_col = tf.cast(shape[2] - 1, tf.float32)
    normalised = tf.stack(
        [y0 / last_row, x0 / last_col, (y0 + h - 1.0) / last_row, (x0 + w - 1.0) / last_col],
        axis=-1)
    return tf.image.crop_and_resize(
        padded, normalised, tf.range(shape[0]), [size, size], method="bilinear")


def resize_whole(images, size):
    """Whole images at ``size`` × ``size`` (bilinear, antialiased), as the evaluation's
    uncropped views take them; unchanged if already that size."""
    if tuple(images.shape[1:3]) == (size, size):
        return images
    return tf.image.resize(images, [size, size], antialias=True)


def _rows(draws_for, images, rows):
    """Per-example draws for ``images``: for the whole batch, or for rows ``start ..`` of a
    ``total``-row batch (``rows=(start, total)``), drawn at ``total`` and sliced."""
    local = tf.shape(images)[0]
    if rows is None:
        return draws_for(local)
    start, total = rows
    return draws_for(total)[start:start + local]


def random_resized_crop(images, seed, size=32, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3),
                        rows=None):
    """torchvision-style random resized crop of every image in ``images`` ``[B, H, W, C]``.

    Boxes come from :func:`sample_crop_boxes` with the stateless ``seed`` [2]; the crops are
    resized bilinearly by :func:`resize_crops`. Returns float32 ``[B, size, size, C]`` in the
    value range of ``images``. ``rows=(start, total)``: ``images`` are rows ``start ..`` of a
    ``total``-row batch and get that batch's boxes.
    """
    images = _check_batch(images)
    shape = tf.shape(images)
    boxes = _rows(lambda n: sample_crop_boxes(seed, n, shape[1], shape[2], scale, ratio),
                  images, rows)
    return resize_crops(images, boxes, size)


def random_flip(images, seed, p=0.5, rows=None):
    """Flips each image of ``images`` ``[B, H, W, C]`` left-right with probability ``p``
    (``rows`` as in :func:`random_resized_crop`)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"`p` must lie in [0, 1], got {p}")
    images = _check_batch(images)
    flip = _rows(lambda n: tf.random.stateless_uniform([n], seed), images, rows) < p
    return tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)
