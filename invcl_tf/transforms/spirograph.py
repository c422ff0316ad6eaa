"""The Spirograph dataset (SPEC §3): a differentiable renderer and its nuisance transformation.

An image is drawn from four target parameters (m, b, sigma, rfore) and six nuisance parameters
(h, rback, gfore, gback, bfore, bback). The nuisance parameters are the transformation α of
InvCLR, so the renderer itself is the ``DifferentiableTransform``.
"""

import math

import numpy as np
from keras import ops

from invcl_tf import backends
from invcl_tf.transforms.base import DifferentiableTransform, uniform_moments
from invcl_tf.transforms.renderer import (  # noqa: F401 (the renderer's names, re-exported)
    GEOMETRIC_NAMES, GRID_EXTENT, IMAGE_SIZE, NORMALIZE_EPS, NORMALIZE_MODES, NUISANCE_NAMES,
    NUM_POINTS, TARGET_NAMES, render)

TARGET_RANGES = ((2.0, 5.0), (0.1, 1.1), (0.25, 1.0), (0.4, 1.0))
NUISANCE_RANGES = ((0.5, 2.5), (0.0, 0.6), (0.4, 1.0), (0.0, 0.6), (0.4, 1.0), (0.0, 0.6))


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


def _sample_uniform(seed, shape, ranges):
    lo, hi = (ops.convert_to_tensor(np.asarray(v, np.float32)) for v in zip(*ranges))
    return lo + (hi - lo) * backends.plumbing("stateless_random").uniform(seed, shape)


def sample_targets(seed, n):
    """Draws ``[n, 4]`` float32 target vectors uniformly in ``TARGET_RANGES`` from ``seed`` [2]."""
    return _sample_uniform(seed, [n, len(TARGET_NAMES)], TARGET_RANGES)


def sample_nuisance(seed, batch_shape, ranges=NUISANCE_RANGES):
    """Draws ``batch_shape + [K]`` float32 nuisance vectors uniformly in the K ``ranges``."""
    ranges = _validate_ranges(ranges, len(nuisance_names(len(ranges))), "ranges")
    dims = list(batch_shape) if isinstance(batch_shape, (list, tuple)) else None
    if dims is not None and all(isinstance(d, (int, np.integer)) for d in dims):
        shape = [*dims, len(ranges)]  # static, as JAX needs
    else:  # a shape tensor (TensorFlow's pipeline)
        batch_shape = ops.reshape(ops.cast(batch_shape, "int32"), [-1])
        shape = ops.concatenate([batch_shape, ops.convert_to_tensor([len(ranges)], "int32")], 0)
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
        if normalize not in NORMALIZE_MODES:
            raise ValueError(f"`normalize` must be one of {NORMALIZE_MODES}, got {normalize!r}")
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

    def param_moments(self):
        """Independent uniform components: exact."""
        return uniform_moments(self.ranges)

    def param_variance(self):
        """Variance (hi − lo)² / 12 of each uniform nuisance component, float32 ``[K]``."""
        return ops.convert_to_tensor(
            np.asarray([(hi - lo) ** 2 / 12.0 for lo, hi in self.ranges], np.float32))
