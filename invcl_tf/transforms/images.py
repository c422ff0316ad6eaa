"""The image transformation of SPEC §2 (CIFAR-10/100, and any RGB images) as a
``DifferentiableTransform``.

Random resized crop and horizontal flip happen in the input pipeline (``prepare_view``); the
colour distortion, differentiable in its four jitter parameters, and the normalisation happen
in the train step (``apply``). Crops are resized to ``image_size`` (CIFAR: 32).
"""

import numpy as np
import tensorflow as tf

from invcl_tf.transforms import color
from invcl_tf.transforms.base import DifferentiableTransform, uniform_moments
from invcl_tf.transforms.crop import random_flip, random_resized_crop, resize_whole

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2023, 0.1994, 0.2010)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2009, 0.1984, 0.2023)

IMAGE_SIZE = 32
_CROP_SALT, _FLIP_SALT = range(2)


def sample_jitter_params(seed, batch_shape, strength=0.5):
    """Draws float32 jitter parameters ``batch_shape + [4]`` from a stateless ``seed`` [2]."""
    lo, hi = (tf.constant(v, tf.float32) for v in zip(*color.jitter_ranges(strength)))
    batch_shape = tf.reshape(tf.cast(batch_shape, tf.int32), [-1])
    shape = tf.concat([batch_shape, [color.NUM_JITTER_PARAMS]], axis=0)
    return lo + (hi - lo) * tf.random.stateless_uniform(shape, seed, dtype=tf.float32)


def sample_masks(seed, batch_size, p_jitter=0.8, p_gray=0.2):
    """Draws float32 0/1 masks ``[B, 2]``: column 0 applies jitter, column 1 grayscale."""
    probs = np.array([p_jitter, p_gray], np.float32)
    if not np.all((probs >= 0.0) & (probs <= 1.0)):
        raise ValueError(f"`p_jitter` and `p_gray` must lie in [0, 1], got {p_jitter}, {p_gray}")
    draws = tf.random.stateless_uniform([batch_size, 2], seed, dtype=tf.float32)
    return tf.cast(draws < probs, tf.float32)


def _channel_values(value, name):
    array = np.asarray(value, np.float32)
    if array.shape != (3,):
        raise ValueError(f"`{name}` must hold one value per RGB channel, got {value!r}")
    return array


class ImageTransform(DifferentiableTransform):
    """Crop + flip (pipeline), then colour distortion and normalisation, with α the jitter."""

    num_params = color.NUM_JITTER_PARAMS
    num_aux = 2

    def __init__(self, mean, std, strength=0.5, p_jitter=0.8, p_gray=0.2, crop=True, flip=True,
                 image_size=IMAGE_SIZE):
        """``mean``/``std``: per-channel normalisation; ``strength``: colour distortion s;
        ``p_jitter``/``p_gray``: random-apply probabilities; ``crop``: random resized crop to
        ``image_size`` (without it, images must already have that size); ``flip``: random
        horizontal flip."""
        self.mean = _channel_values(mean, "mean")
        self.std = _channel_values(std, "std")
        if not np.all(self.std > 0.0):
            raise ValueError(f"`std` must be positive, got {std!r}")
        color.jitter_ranges(strength)  # fail here rather than at the first draw
        for name, p in (("p_jitter", p_jitter), ("p_gray", p_gray)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"`{name}` must lie in [0, 1], got {p}")
        self.strength = float(strength)
        self.p_jitter = float(p_jitter)
        self.p_gray = float(p_gray)
        self.crop = bool(crop)
        self.flip = bool(flip)
        self.image_size = int(image_size)

    def prepare_view(self, x, seed, rows=None):
        """Scales a uint8 or [0, 1] float batch to float32 [0, 1], then crops and flips it.

        Without the crop, images of another size are resized (bilinear, antialiased) to
        ``image_size``. ``rows``: see ``DifferentiableTransform.prepare_view``.
        """
        x = tf.image.convert_image_dtype(x, tf.float32)
        if self.crop:
            x = random_resized_crop(
                x, tf.random.experimental.stateless_fold_in(seed, _CROP_SALT), self.image_size,
                rows=rows)
        else:
            x = resize_whole(x, self.image_size)
        if not self.flip:
            return x
        return random_flip(x, tf.random.experimental.stateless_fold_in(seed, _FLIP_SALT),
                           rows=rows)

    def variant(self, **changes):
        """A copy with some constructor arguments changed (e.g. colour only, for evaluation)."""
        args = {"mean": self.mean, "std": self.std, "strength": self.strength,
                "p_jitter": self.p_jitter, "p_gray": self.p_gray, "crop": self.crop,
                "flip": self.flip, "image_size": self.image_size}
        return ImageTransform(**{**args, **changes})

    def sample_params(self, seed, batch_shape):
        """Draws jitter parameters ``batch_shape + [4]`` for ``self.strength``."""
        return sample_jitter_params(seed, batch_shape, self.strength)

    def sample_aux(self, seed, batch_size):
        """Draws the jitter and grayscale random-apply masks, float32 ``[B, 2]``."""
        return sample_masks(seed, batch_size, self.p_jitter, self.p_gray)

    def apply(self, x, alpha, aux):
        """Random colour distortion of prepared images ``x``, then (x − mean) / std."""
        return self.normalize_images(color.random_color(x, alpha, aux))

    def normalize_images(self, images):
        """(x − mean) / std per channel."""
        return (images - tf.cast(self.mean, images.dtype)) / tf.cast(self.std, images.dtype)

    def param_moments(self):
        """Independent uniform jitter parameters: exact."""
        return uniform_moments(color.jitter_ranges(self.strength))

    def param_variance(self):
        """Prior variance of the four jitter parameters, float32 ``[4]``."""
        return color.jitter_param_variance(self.strength)
