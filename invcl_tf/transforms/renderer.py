"""The Spirograph renderer (SPEC §3), differentiable in targets and nuisance, written in
``keras.ops`` for every backend: a curve of 40 points, each a Gaussian on a 32 × 32 grid,
normalised row by row and coloured by foreground and background."""

import math

import keras
import numpy as np
from keras import ops

from invcl_tf.numerics import cos, ensure_shape, sin, unknown_rank

TARGET_NAMES = ("m", "b", "sigma", "rfore")
NUISANCE_NAMES = ("h", "rback", "gfore", "gback", "bfore", "bback")
#: The geometric variant's extra nuisance: the curve's rotation (radians, about the grid's
#: centre) and its shift (grid units), appended to the six above.
GEOMETRIC_NAMES = ("rotation", "shift_x", "shift_y")

IMAGE_SIZE = 32
NUM_POINTS = 40
GRID_EXTENT = 6.0
#: Added to the normalising maximum, as in the authors' code, so empty rows stay finite.
NORMALIZE_EPS = 1e-8

NORMALIZE_MODES = ("row", "image")


def _compute_dtype(targets, nuisance):
    # float64 is opt-in (gradient checks); NumPy float64 defaults must not silently leak into
    # the float32 training pipeline, so only float64 *tensors* select it.
    if all(keras.ops.is_tensor(v) and keras.backend.standardize_dtype(v.dtype) == "float64"
           for v in (targets, nuisance)):
        return "float64"
    return "float32"


def _check_shape(value, name, *widths):
    shape = value.shape
    if unknown_rank(value):
        return ensure_shape(value, [None, widths[0]])
    if len(shape) != 2 or shape[-1] not in widths:
        allowed = " or ".join(map(str, widths))
        raise ValueError(f"`{name}` must have shape [B, {allowed}], got {shape}")
    return value


def render(targets, nuisance, normalize="row"):
    """Draws Spirograph images, differentiable in both arguments.

    Args:
      targets: ``[B, 4]`` columns (m, b, sigma, rfore).
      nuisance: ``[B, 6]`` columns (h, rback, gfore, gback, bfore, bback), or ``[B, 9]`` with
        the curve's rotation and shift (``GEOMETRIC_NAMES``) after them.
      normalize: ``"row"`` divides each image row by its own maximum (the authors' code, which
        produced the published numbers); ``"image"`` divides by the whole image's maximum, a
        deviation from the authors' code matching the paper's wording.

    Returns:
      ``[B, 32, 32, 3]`` NHWC images; the curve's x runs along axis 1, y along axis 2. Computed
      in float64 when both inputs are float64 tensors, otherwise in float32.
    """
    if normalize not in NORMALIZE_MODES:
        raise ValueError(f"`normalize` must be one of {NORMALIZE_MODES}, got {normalize!r}")
    dtype = _compute_dtype(targets, nuisance)
    targets = _check_shape(ops.cast(targets, dtype), "targets", len(TARGET_NAMES))
    nuisance = _check_shape(ops.cast(nuisance, dtype), "nuisance", len(NUISANCE_NAMES),
                            len(NUISANCE_NAMES) + len(GEOMETRIC_NAMES))
    batch_t, batch_n = targets.shape[0], nuisance.shape[0]
    if batch_t is not None and batch_n is not None and batch_t != batch_n:
        raise ValueError(
            f"`targets` and `nuisance` must share the batch size, got {batch_t} and {batch_n}"
        )

    m, b, sigma, rfore = (targets[:, k] for k in range(len(TARGET_NAMES)))
    h, rback, gfore, gback, bfore, bback = (nuisance[:, k] for k in range(len(NUISANCE_NAMES)))

    # a − b equals m − h; it is spelled via a to follow SPEC §3 term by term.
    a = m + b - h
    radius = (a - b)[:, None]
    ratio = ((a - b) / b)[:, None]
    t = ops.convert_to_tensor(np.linspace(0.0, 2.0 * math.pi, NUM_POINTS), dtype)
    hh = h[:, None]
    x = radius * cos(t) + hh * cos(t * ratio)  # [B, P]
    y = radius * sin(t) - hh * sin(t * ratio)
    if nuisance.shape[-1] > len(NUISANCE_NAMES):  # the geometric variant: rotate, then shift
        theta, shift_x, shift_y = (nuisance[:, k][:, None] for k in range(6, 9))
        c, s = cos(theta), sin(theta)
        x, y = c * x - s * y + shift_x, s * x + c * y + shift_y

    # The Gaussian factorises over the two grid axes, so each point contributes an outer product
    # of two [G] profiles and the [B, P, G, G] distance tensor is never built.
    grid = ops.convert_to_tensor(np.linspace(-GRID_EXTENT, GRID_EXTENT, IMAGE_SIZE), dtype)
    inv_sigma = (1.0 / sigma)[:, None, None]
    profile_u = ops.exp(-ops.square(grid - x[:, :, None]) * inv_sigma)  # [B, P, G]
    profile_v = ops.exp(-ops.square(grid - y[:, :, None]) * inv_sigma)
    intensity = ops.einsum("bpu,bpv->buv", profile_u, profile_v) / NUM_POINTS

    axes = [2] if normalize == "row" else [1, 2]
    intensity = intensity / (ops.max(intensity, axis=axes, keepdims=True) + NORMALIZE_EPS)

    fore = ops.stack([rfore, gfore, bfore], axis=-1)[:, None, None, :]
    back = ops.stack([rback, gback, bback], axis=-1)[:, None, None, :]
    intensity = intensity[..., None]
    return intensity * fore + (1.0 - intensity) * back
