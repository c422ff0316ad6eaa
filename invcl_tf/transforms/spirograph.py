"""The Spirograph dataset (SPEC §3): a differentiable renderer and its nuisance transformation.

An image is drawn from four target parameters (m, b, sigma, rfore) and six nuisance parameters
(h, rback, gfore, gback, bfore, bback). The nuisance parameters are the transformation α of
InvCLR, so the renderer itself is the ``DifferentiableTransform``.
"""

import math

import numpy as np
import tensorflow as tf

from invcl_tf.transforms.base import DifferentiableTransform

TARGET_NAMES = ("m", "b", "sigma", "rfore")
NUISANCE_NAMES = ("h", "rback", "gfore", "gback", "bfore", "bback")
TARGET_RANGES = ((2.0, 5.0), (0.1, 1.1), (0.25, 1.0), (0.4, 1.0))
NUISANCE_RANGES = ((0.5, 2.5), (0.0, 0.6), (0.4, 1.0), (0.0, 0.6), (0.4, 1.0), (0.0, 0.6))
#: The geometric variant's extra nuisance: the curve's rotation (radians, about the grid's
#: centre) and its shift (grid units), appended to the six above.
GEOMETRIC_NAMES = ("rotation", "shift_x", "shift_y")

IMAGE_SIZE = 32
NUM_POINTS = 40
GRID_EXTENT = 6.0
#: Added to the normalising maximum, as in the authors' code, so empty rows stay finite.
NORMALIZE_EPS = 1e-8

_NORMALIZE_MODES = ("row", "image")


def _validate_ranges(ranges, size, name):
    """Returns ``ranges`` as a tuple of ``size`` float (lo, hi) pairs with lo <= hi."""
    try:
        pairs = tuple((float(lo), float(hi)) for lo, hi in ranges)
    except (TypeError, ValueError) as err:
        raise ValueError(f"`{name}` must be a sequence of (lo, hi) pairs, got {ranges!r}") from err
    if len(pairs) != size:
        raise ValueError(f"`{name}` must hold {size} (lo, hi) pairs, got {len(pairs)}")
    for lo, hi in pairs:
        if not lo <= hi:
            raise ValueError(f"`{name}` needs lo <= hi in every pair, got ({lo}, {hi})")
    return pairs


def _compute_dtype(targets, nuisance):
    # float64 is opt-in (gradient checks); NumPy float64 defaults must not silently leak into
    # the float32 training pipeline, so only float64 *tensors* select it.
    if all(tf.is_tensor(v) and v.dtype == tf.float64 for v in (targets, nuisance)):
        return tf.float64
    return tf.float32


def _check_shape(value, name, *widths):
    # An unknown rank (a tf.function with no input signature) can only be checked at run time.
    shape = value.shape
    if shape.rank is None:
        return tf.ensure_shape(value, [None, widths[0]])
    if shape.rank != 2 or shape[-1] not in widths:
        allowed = " or ".join(map(str, widths))
        raise ValueError(f"`{name}` must have shape [B, {allowed}], got {shape}")
    return value


def nuisance_names(count):
    """The names of ``count`` (6, or 9 with the geometric variant) nuisance parameters."""
    names = NUISANCE_NAMES + GEOMETRIC_NAMES
    if count not in (len(NUISANCE_NAMES), len(names)):
        raise ValueError(f"Spirograph nuisance `ranges` hold {len(NUISANCE_NAMES)} or "
                         f"{len(names)} (lo, hi) pairs, got {count}")
    return names[:count]


def geometric_ranges(rotation, shift):
    """Nuisance ranges with rotation U(−rotation, rotation) degrees and each shift
    U(−shift, shift) times the image's side."""
    turn = math.radians(float(rotation))
    move = float(shift) * 2.0 * GRID_EXTENT
    return NUISANCE_RANGES + ((-turn, turn), (-move, move), (-move, move))


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
    if normalize not in _NORMALIZE_MODES:
        raise ValueError(f"`normalize` must be one of {_NORMALIZE_MODES}, got {normalize!r}")
    dtype = _compute_dtype(targets, nuisance)
    targets = _check_shape(tf.cast(targets, dtype), "targets", len(TARGET_NAMES))
    nuisance = _check_shape(tf.cast(nuisance, dtype), "nuisance", len(NUISANCE_NAMES),
                            len(NUISANCE_NAMES) + len(GEOMETRIC_NAMES))
    batch_t, batch_n = targets.shape[0], nuisance.shape[0]
    if batch_t is not None and batch_n is not None and batch_t != batch_n:
        raise ValueError(
            f"`targets` and `nuisance` must share the batch size, got {batch_t} and {batch_n}"
        )

    m, b, sigma, rfore = tf.unstack(targets, axis=-1)
    h, rback, gfore, gback, bfore, bback = tf.unstack(nuisance[:, :len(NUISANCE_NAMES)],
                                                      axis=-1)

    # a − b equals m − h; it is spelled via a to follow SPEC §3 term by term.
    a = m + b - h
    radius = (a - b)[:, None]
    ratio = ((a - b) / b)[:, None]
    t = tf.constant(np.linspace(0.0, 2.0 * math.pi, NUM_POINTS), dtype)
    hh = h[:, None]
    x = radius * tf.cos(t) + hh * tf.cos(t * ratio)  # [B, P]
    y = radius * tf.sin(t) - hh * tf.sin(t * ratio)
    if nuisance.shape[-1] > len(NUISANCE_NAMES):  # the geometric variant: rotate, then shift
        theta, shift_x, shift_y = (nuisance[:, k][:, None] for k in range(6, 9))
        cos, sin = tf.cos(theta), tf.sin(theta)
        x, y = cos * x - sin * y + shift_x, sin * x + cos * y + shift_y

    # The Gaussian factorises over the two grid axes, so each point contributes an outer product
    # of two [G] profiles and the [B, P, G, G] distance tensor is never built.
    grid = tf.constant(np.linspace(-GRID_EXTENT, GRID_EXTENT, IMAGE_SIZE), dtype)
    inv_sigma = (1.0 / sigma)[:, None, None]
    profile_u = tf.exp(-tf.square(grid - x[:, :, None]) * inv_sigma)  # [B, P, G]
    profile_v = tf.exp(-tf.square(grid - y[:, :, None]) * inv_sigma)
    intensity = tf.einsum("bpu,bpv->buv", profile_u, profile_v) / NUM_POINTS

    axes = [2] if normalize == "row" else [1, 2]
    intensity = intensity / (tf.reduce_max(intensity, axis=axes, keepdims=True) + NORMALIZE_EPS)

    fore = tf.stack([rfore, gfore, bfore], axis=-1)[:, None, None, :]
    back = tf.stack([rback, gback, bback], axis=-1)[:, None, None, :]
    intensity = intensity[..., None]
    return intensity * fore + (1.0 - intensity) * back


def _sample_uniform(seed, shape, ranges):
    lo, hi = (tf.constant(v, tf.float32) for v in zip(*ranges))
    return lo + (hi - lo) * tf.random.stateless_uniform(shape, seed, dtype=tf.float32)


def sample_targets(seed, n):
    """Draws ``[n, 4]`` float32 target vectors uniformly in ``TARGET_RANGES`` from ``seed`` [2]."""
    return _sample_uniform(seed, [n, len(TARGET_NAMES)], TARGET_RANGES)


def sample_nuisance(seed, batch_shape, ranges=NUISANCE_RANGES):
    """Draws ``batch_shape + [K]`` float32 nuisance vectors uniformly in the K ``ranges``."""
    ranges = _validate_ranges(ranges, len(nuisance_names(len(ranges))), "ranges")
    batch_shape = tf.reshape(tf.cast(batch_shape, tf.int32), [-1])
    shape = tf.concat([batch_shape, [len(ranges)]], axis=0)
    return _sample_uniform(seed, shape, ranges)


def shifted_ranges(ranges, names, shift=0.0, widen=0.0):
    """Returns new nuisance ranges, (lo + shift − widen, hi + shift + widen) for ``names``.

    Used by the robustness experiments of SPEC §5 (mean shift or widening of h and the
    background colours); components not named are returned unchanged.
    """
    all_names = nuisance_names(len(ranges))
    ranges = _validate_ranges(ranges, len(all_names), "ranges")
    names = (names,) if isinstance(names, str) else tuple(names)
    unknown = [n for n in names if n not in all_names]
    if unknown:
        raise ValueError(f"`names` must be among {all_names}, got unknown {unknown}")
    shifted = tuple(
        (lo + shift - widen, hi + shift + widen) if name in names else (lo, hi)
        for (lo, hi), name in zip(ranges, all_names)
    )
    if any(lo > hi for lo, hi in shifted):
        raise ValueError(f"`widen`={widen} would leave a range with lo > hi")
    return shifted


class SpirographTransform(DifferentiableTransform):
    """Spirograph rendering as t(x, α): x are target vectors ``[B, 4]``, α nuisance ``[B, K]``
    (K = 6, or 9 with the curve's rotation and shift: ``geometric_ranges``)."""

    num_aux = 0
    image_size = IMAGE_SIZE

    def __init__(self, ranges=NUISANCE_RANGES, normalize="row"):
        """``ranges``: six or nine (lo, hi) nuisance ranges; ``normalize``: see :func:`render`."""
        if normalize not in _NORMALIZE_MODES:
            raise ValueError(f"`normalize` must be one of {_NORMALIZE_MODES}, got {normalize!r}")
        self.names = nuisance_names(len(tuple(ranges)))
        self.num_params = len(self.names)
        self.ranges = _validate_ranges(ranges, self.num_params, "ranges")
        self.normalize = normalize

    def sample_params(self, seed, batch_shape):
        """Draws α uniformly in ``self.ranges``, shape ``batch_shape + [6]``."""
        return sample_nuisance(seed, batch_shape, self.ranges)

    def apply(self, x, alpha, aux):
        """Renders the images of targets ``x`` under nuisance ``alpha`` (``aux`` is unused)."""
        del aux
        return render(x, alpha, normalize=self.normalize)

    def param_variance(self):
        """Variance (hi − lo)² / 12 of each uniform nuisance component, float32 ``[K]``."""
        return tf.constant([(hi - lo) ** 2 / 12.0 for lo, hi in self.ranges], tf.float32)
