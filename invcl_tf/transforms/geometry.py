"""Differentiable geometry: the random resized crop, a rotation and a shift as one affine warp
with continuous parameters, resampled bilinearly, so the penalty can differentiate through it.

α per example: the crop box's centre (row, column, in input pixels), its log area fraction
and log aspect ratio (w/h), then, when their ranges are set, a rotation angle (radians, about
the box centre) and a shift (row, column, in fractions of the input's side). Output pixel
(i, j) of an ``S × S`` result samples the input at

    c + t·(H, W) + R(θ)·((i/(S−1) − ½)(h − 1), (j/(S−1) − ½)(w − 1)),

with ``h = √(a·H·W / r)``, ``w = √(a·H·W·r)``: for θ = 0, t = 0 this is exactly where
``tf.image.crop_and_resize`` samples the box (first and last output samples on the box's
first and last pixel centres), so the pipeline's crop and this warp agree for the same box.
Samples outside the image read the nearest edge pixel.

The crop parameters are drawn from torchvision's ``RandomResizedCrop`` box distribution
(``crop.sample_crop_boxes``, integer boxes, as the pipeline draws them); the flip stays a
non-differentiated per-example choice (``aux``).
"""

import math

import tensorflow as tf

from invcl_tf.transforms import crop
from invcl_tf.transforms.base import DifferentiableTransform

PARAM_NAMES = ("crop_row", "crop_col", "log_area", "log_ratio", "rotation", "shift_row",
               "shift_col")
_BOX_SALT, _ROTATION_SALT, _SHIFT_SALT, _FLIP_SALT = range(4)
_VARIANCE_SAMPLES = 200_000


def box_params(boxes, height, width):
    """Integer boxes (y0, x0, h, w) ``[..., 4]`` -> (centre row, centre col, log area fraction,
    log aspect ratio) ``[..., 4]`` float32."""
    y0, x0, h, w = tf.unstack(tf.cast(boxes, tf.float32), axis=-1)
    area = h * w / (float(height) * float(width))
    return tf.stack([y0 + (h - 1.0) / 2.0, x0 + (w - 1.0) / 2.0, tf.math.log(area),
                     tf.math.log(w / h)], axis=-1)


def sample_coordinates(alpha, height, width, size):
    """Input coordinates (rows, cols), each ``[B, size, size]``, that the warp with parameters
    ``alpha`` ``[B, 4 | 5 | 7]`` samples (see the module docstring)."""
    alpha = tf.convert_to_tensor(alpha)
    dtype = alpha.dtype
    count = alpha.shape[-1]
    cy, cx, log_area, log_ratio = (alpha[:, k] for k in range(4))
    pixels = float(height) * float(width)
    area = tf.exp(log_area) * pixels
    ratio = tf.exp(log_ratio)
    box_h, box_w = tf.sqrt(area / ratio), tf.sqrt(area * ratio)
    grid = tf.cast(tf.linspace(-0.5, 0.5, size), dtype) if size > 1 else tf.zeros([1], dtype)
    v = grid[None, :, None] * (box_h - 1.0)[:, None, None]  # [B, S, 1]: along rows
    u = grid[None, None, :] * (box_w - 1.0)[:, None, None]  # [B, 1, S]: along columns
    if count in (5, 7):
        theta = alpha[:, 4][:, None, None]
        cos, sin = tf.cos(theta), tf.sin(theta)
        rows, cols = cos * v - sin * u, sin * v + cos * u
    else:
        rows, cols = v + tf.zeros_like(u), u + tf.zeros_like(v)
    rows += cy[:, None, None]
    cols += cx[:, None, None]
    if count in (6, 7):
        rows += (alpha[:, count - 2] * float(height))[:, None, None]
        cols += (alpha[:, count - 1] * float(width))[:, None, None]
    return rows, cols


def bilinear_sample(images, rows, cols):
    """``images`` ``[B, H, W, C]`` at real coordinates ``rows``/``cols`` ``[B, S, T]`` (pixel
    centres at integers; outside, the nearest edge), bilinear; differentiable in the
    coordinates and the images. Returns ``[B, S, T, C]``."""
    images = tf.convert_to_tensor(images)
    dtype = rows.dtype
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    rows = tf.clip_by_value(rows, 0.0, tf.cast(height - 1, dtype))
    cols = tf.clip_by_value(cols, 0.0, tf.cast(width - 1, dtype))
    r0, c0 = tf.floor(rows), tf.floor(cols)
    wr, wc = (rows - r0)[..., None], (cols - c0)[..., None]
    r0 = tf.cast(r0, tf.int32)
    c0 = tf.cast(c0, tf.int32)
    r1, c1 = tf.minimum(r0 + 1, height - 1), tf.minimum(c0 + 1, width - 1)
    flat = tf.reshape(images, [-1, shape[3]])
    base = (tf.range(shape[0]) * height * width)[:, None, None]

    def at(r, c):
        return tf.cast(tf.gather(flat, base + r * width + c), dtype)

    top = at(r0, c0) * (1.0 - wc) + at(r0, c1) * wc
    bottom = at(r1, c0) * (1.0 - wc) + at(r1, c1) * wc
    return top * (1.0 - wr) + bottom * wr


def warp(images, alpha, size):
    """The affine warp of ``images`` ``[B, H, W, C]`` with parameters ``alpha``, at
    ``size`` × ``size``; differentiable in ``alpha``."""
    images = tf.convert_to_tensor(images)
    height, width = images.shape[1], images.shape[2]
    rows, cols = sample_coordinates(alpha, height, width, size)
    return bilinear_sample(images, rows, cols)


class GeometricTransform(DifferentiableTransform):
    """Random resized crop (+ rotation, shift) as a differentiable warp, then a random flip.

    Takes uncropped images ``[B, H, W, C]`` of side ``input_size``, returns ``image_size``.
    ``rotation``: the angle is U(−rotation, rotation) degrees (0: no rotation parameter);
    ``shift``: each shift is U(−shift, shift) times the side (0: no shift parameters);
    ``crop=False``: the whole image, resized in ``prepare_view`` as the evaluation's uncropped
    views are (no crop parameters; ``input_size`` unused), as the test-time rotation and
    shift sweeps use it.
    """

    num_aux = 1

    def __init__(self, input_size, image_size, rotation=0.0, shift=0.0, flip=True,
                 scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), crop=True):
        if rotation < 0 or shift < 0:
            raise ValueError(f"rotation and shift ranges must be >= 0, got {rotation}, {shift}")
        self.crop = bool(crop)
        self.input_size = int(input_size) if self.crop else input_size
        self.image_size = int(image_size)
        self.rotation, self.shift, self.flip = float(rotation), float(shift), bool(flip)
        self.scale, self.ratio = tuple(scale), tuple(ratio)
        self.names = (PARAM_NAMES[:4] if self.crop else ()) + (
            PARAM_NAMES[4:5] if self.rotation else ()) + (PARAM_NAMES[5:] if self.shift else ())
        self.num_params = len(self.names)
        self._variance = None

    def sample_params(self, seed, batch_shape):
        """Crop boxes drawn as the pipeline draws them, as continuous parameters, then the
        rotation and shift; ``batch_shape + [K]``."""
        count = tf.reduce_prod(batch_shape)
        fold = tf.random.experimental.stateless_fold_in
        parts = [tf.zeros([count, 0])]
        if self.crop:
            size = self.input_size
            boxes = crop.sample_crop_boxes(fold(seed, _BOX_SALT), count, size, size,
                                           self.scale, self.ratio)
            parts.append(box_params(boxes, size, size))
        if self.rotation:
            limit = math.radians(self.rotation)
            parts.append(tf.random.stateless_uniform([count, 1], fold(seed, _ROTATION_SALT),
                                                     -limit, limit))
        if self.shift:
            parts.append(tf.random.stateless_uniform([count, 2], fold(seed, _SHIFT_SALT),
                                                     -self.shift, self.shift))
        shape = tf.concat([tf.cast(batch_shape, tf.int32), [self.num_params]], axis=0)
        return tf.reshape(tf.concat(parts, axis=-1), shape)

    def sample_aux(self, seed, batch_size):
        """The flip choice, float32 ``[B, 1]`` (1: flip)."""
        if not self.flip:
            return tf.zeros([batch_size, 1], tf.float32)
        draw = tf.random.stateless_uniform(
            [batch_size, 1], tf.random.experimental.stateless_fold_in(seed, _FLIP_SALT))
        return tf.cast(draw < 0.5, tf.float32)

    def prepare_view(self, x, seed, rows=None):
        """Images as float32 in [0, 1], uncropped (the crop is part of ``apply``); without
        the crop, resized to ``image_size``."""
        del seed, rows
        x = tf.image.convert_image_dtype(x, tf.float32)
        return x if self.crop else crop.resize_whole(x, self.image_size)

    def apply(self, x, alpha, aux):
        """Warps prepared images ``x`` with ``alpha`` and flips those ``aux`` marks."""
        if not self.crop:  # the whole image's box, then the rotation and shift
            height, width = x.shape[1], x.shape[2]
            whole = tf.constant([(height - 1) / 2, (width - 1) / 2, 0.0, math.log(width / height)],
                                alpha.dtype)
            alpha = tf.concat([tf.broadcast_to(whole, [tf.shape(alpha)[0], 4]), alpha], axis=-1)
        out = warp(x, alpha, self.image_size)
        flip = tf.cast(aux[:, 0], tf.bool)[:, None, None, None]
        return tf.where(flip, tf.reverse(out, axis=[2]), out)

    def param_variance(self):
        """Prior variance of each parameter, float32 ``[K]`` (crop: from 200,000 draws)."""
        if self._variance is None:
            draws = self.sample_params(tf.constant([0, 1], tf.int64), [_VARIANCE_SAMPLES])
            self._variance = tf.math.reduce_variance(draws, axis=0)
        return self._variance

