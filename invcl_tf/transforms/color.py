"""The differentiable colour distortion of the CIFAR experiments (SPEC §2).

Colour jitter with per-example parameters α = (brightness, contrast, saturation, hue), applied
in that fixed order, then per-example random-apply masks for the jitter and for grayscale. All
operations work on whole batches of NHWC images in [0, 1], in ``keras.ops`` for every backend
(the draws of α and of the masks are the input pipeline's: ``invcl_tf.transforms.images``).
"""

import math

import keras
from keras import ops

from invcl_tf.numerics import cos, ensure_shape, mean, sin, unknown_rank

NUM_JITTER_PARAMS = 4
#: Luma weights of gray(x) for the R, G, B channels.
GRAY_WEIGHTS = (0.299, 0.587, 0.114)
#: RGB → YIQ and YIQ → RGB as the authors write them; their product is only roughly identity.
T_YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.321), (0.211, -0.523, 0.311))
T_RGB = ((1.0, 0.956, 0.621), (1.0, -0.272, -0.647), (1.0, -1.107, 1.705))


def _check_images(images):
    images = ops.convert_to_tensor(images)
    dtype = keras.backend.standardize_dtype(images.dtype)
    if "float" not in dtype:
        raise ValueError(f"`images` must be floating point in [0, 1], got {dtype}")
    shape = images.shape
    if unknown_rank(images):
        return ensure_shape(images, [None, None, None, 3])
    if len(shape) != 4 or shape[-1] != 3:
        raise ValueError(f"`images` must have shape [B, H, W, 3], got {shape}")
    return images


def _check_per_example(value, images, name, width):
    value = ops.cast(value, images.dtype)
    shape = value.shape
    if unknown_rank(value):
        value = ensure_shape(value, [None, width])
    elif len(shape) != 2 or shape[-1] != width:
        raise ValueError(f"`{name}` must have shape [B, {width}], got {shape}")
    batch, expected = value.shape[0], images.shape[0]
    if batch is not None and expected is not None and batch != expected:
        raise ValueError(
            f"`{name}` must have one row per image: batch {batch} vs {expected} images")
    return value


def _gray(images):
    weights = ops.convert_to_tensor(GRAY_WEIGHTS, images.dtype)
    return ops.sum(images * weights, axis=-1, keepdims=True)


def grayscale(images):
    """Returns gray(x) = 0.299 R + 0.587 G + 0.114 B repeated on the 3 channels."""
    images = _check_images(images)
    return ops.tile(_gray(images), [1, 1, 1, 3])


def hue_matrices(hue):
    """Per-example 3×3 matrices T_rgb · R(2πη) · T_yiq for hue shifts ``hue`` ``[B]``."""
    theta = 2.0 * math.pi * hue
    c, s = cos(theta), sin(theta)
    zero, one = ops.zeros_like(theta), ops.ones_like(theta)
    rotation = ops.reshape(
        ops.stack([one, zero, zero, zero, c, -s, zero, s, c], axis=-1), [-1, 3, 3])
    t_rgb = ops.convert_to_tensor(T_RGB, hue.dtype)
    t_yiq = ops.convert_to_tensor(T_YIQ, hue.dtype)
    return ops.einsum("ij,bjk,kl->bil", t_rgb, rotation, t_yiq)


def jitter(images, params):
    """Colour jitter of SPEC §2, differentiable in ``images`` and ``params``.

    Args:
      images: ``[B, H, W, 3]`` floating-point images in [0, 1].
      params: ``[B, 4]`` per-example (brightness, contrast, saturation, hue).

    Returns:
      The jittered images, in the dtype of ``images``. The hue rotation is not clipped, so
      values may leave [0, 1] slightly, as in the authors' code.
    """
    images = _check_images(images)
    params = _check_per_example(params, images, "params", NUM_JITTER_PARAMS)
    brightness, contrast, saturation = (params[:, k][:, None, None, None] for k in range(3))

    x = ops.clip(images * brightness, 0.0, 1.0)
    mean_gray = mean(_gray(x), axis=(1, 2, 3), keepdims=True)
    x = ops.clip(x * contrast + mean_gray * (1.0 - contrast), 0.0, 1.0)
    x = ops.clip(x * saturation + _gray(x) * (1.0 - saturation), 0.0, 1.0)
    return ops.einsum("bij,bhwj->bhwi", hue_matrices(params[:, 3]), x)


def random_color(images, params, masks):
    """Jitter where ``masks[:, 0]`` is 1, then grayscale where ``masks[:, 1]`` is 1.

    ``masks`` ``[B, 2]`` holds 0/1 choices (see :func:`sample_masks`); they blend as
    ``y · m + x · (1 − m)``, so gradients w.r.t. ``params`` flow through the jittered examples.
    """
    images = _check_images(images)
    masks = _check_per_example(masks, images, "masks", 2)
    apply_jitter, apply_gray = (masks[:, k][:, None, None, None] for k in range(2))
    x = jitter(images, params) * apply_jitter + images * (1.0 - apply_jitter)
    return grayscale(x) * apply_gray + x * (1.0 - apply_gray)


def jitter_ranges(strength=0.5):
    """The (lo, hi) range of each jitter parameter for colour-distortion ``strength`` s.

    Brightness, contrast and saturation factors are U[1 − 0.8s, 1 + 0.8s] (the lower end
    clipped at 0, as torchvision's ColorJitter does), the hue shift U[−0.2s, 0.2s].
    """
    strength = float(strength)
    if not strength >= 0.0:
        raise ValueError(f"`strength` must be non-negative, got {strength}")
    factor = (max(1.0 - 0.8 * strength, 0.0), 1.0 + 0.8 * strength)
    return (factor, factor, factor, (-0.2 * strength, 0.2 * strength))


def jitter_param_variance(strength=0.5):
    """Prior variance (hi − lo)² / 12 of each jitter parameter, float32 ``[4]``."""
    return ops.convert_to_tensor([(hi - lo) ** 2 / 12.0 for lo, hi in jitter_ranges(strength)],
                                 "float32")
