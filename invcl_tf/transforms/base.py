"""The interface every differentiable transformation t(x, α) implements.

The input pipeline calls ``prepare_view`` (non-differentiable per-view work such as crops),
``sample_params`` and ``sample_aux`` with stateless seeds; the train step calls ``apply``
inside its gradient tape, so the penalty can differentiate the representation w.r.t. α.
"""

import abc

import numpy as np
from keras import ops

from invcl_tf import backends


class DifferentiableTransform(abc.ABC):
    """A family of transformations t(x, α) differentiable in the parameters α ∈ R^K."""

    #: K, the number of differentiable parameters per example.
    num_params: int
    #: Number of non-differentiated per-example choices (e.g. random-apply masks).
    num_aux: int = 0
    #: Side of the square RGB images ``apply`` returns (the encoder's input).
    image_size: int = 32

    @abc.abstractmethod
    def sample_params(self, seed, batch_shape):
        """Draws α of shape ``batch_shape + [K]`` (float32) from a stateless ``seed`` [2]."""

    @abc.abstractmethod
    def apply(self, x, alpha, aux):
        """Returns t(x, α) as float32 NHWC images; differentiable in ``alpha``."""

    def sample_aux(self, seed, batch_size):
        """Draws the per-example non-differentiated choices, float32 ``[B, num_aux]``."""
        del seed
        return ops.zeros([batch_size, self.num_aux], "float32")

    def prepare_view(self, x, seed, rows=None):
        """Non-differentiable per-view work done in the input pipeline (default: none).

        ``rows=(start, total)``: ``x`` holds rows ``start ..`` of a ``total``-row batch and
        must get the draws those rows get in the whole batch (draw for ``total``, slice).
        """
        del seed, rows
        return x

    def normalize_images(self, images):
        """Maps images in [0, 1] to the encoder's input scale (default: unchanged)."""
        return images

    @abc.abstractmethod
    def param_variance(self):
        """Prior variance of each component of α, float32 ``[K]`` (a no-information baseline)."""

    def param_moments(self):
        """``(μ [K], Σ [K, K])``, float64 NumPy: the mean and covariance of α's distribution,
        for the penalty's expectation over α′. By default estimated once from
        ``MOMENT_DRAWS`` draws; transforms with a closed form override it."""
        if getattr(self, "_moments", None) is None:
            drawn = np.asarray(ops.convert_to_numpy(
                self.sample_params(np.asarray([0, 2], np.int64), [MOMENT_DRAWS])), np.float64)
            self._moments = drawn.mean(axis=0), np.cov(drawn, rowvar=False).reshape(
                self.num_params, self.num_params)
        return self._moments


#: Draws behind ``param_moments`` where no closed form is declared.
MOMENT_DRAWS = 1_000_000


def uniform_moments(ranges):
    """``(μ, Σ)`` of independent uniform components on ``ranges``, ``[(lo, hi), ...]``."""
    lo, hi = np.asarray(ranges, np.float64).T
    return (lo + hi) / 2.0, np.diag((hi - lo) ** 2 / 12.0)


class Composed(DifferentiableTransform):
    """``then ∘ first``: ``first`` applied, then ``then``, with α = (α_first, α_then) and the
    per-example choices likewise concatenated, so the penalty differentiates through both.

    The input pipeline's ``prepare_view`` is ``first``'s (it sees the raw inputs); the output
    size and the normalisation are ``then``'s. ``variant`` changes ``then``; asked to drop the
    crop (``crop=False``, as the evaluation's variants do) it returns ``then``'s variant alone,
    which prepares raw inputs itself.
    """

    def __init__(self, first, then):
        self.first, self.then = first, then
        self.num_params = first.num_params + then.num_params
        self.num_aux = first.num_aux + then.num_aux
        self.image_size = then.image_size
        self.names = tuple(getattr(first, "names", ())) + tuple(getattr(then, "names", ()))

    def _split(self, values, count):
        return values[..., :count], values[..., count:]

    def sample_params(self, seed, batch_shape):
        fold_in = backends.plumbing("stateless_random").fold_in
        parts = (t.sample_params(fold_in(seed, i), batch_shape)
                 for i, t in enumerate((self.first, self.then)))
        return ops.concatenate(list(parts), axis=-1)

    def sample_aux(self, seed, batch_size):
        fold_in = backends.plumbing("stateless_random").fold_in
        parts = (t.sample_aux(fold_in(seed, i), batch_size)
                 for i, t in enumerate((self.first, self.then)))
        return ops.concatenate(list(parts), axis=-1)

    def prepare_view(self, x, seed, rows=None):
        return self.first.prepare_view(x, seed, rows=rows)

    def apply(self, x, alpha, aux):
        alpha_first, alpha_then = self._split(alpha, self.first.num_params)
        aux_first, aux_then = self._split(aux, self.first.num_aux)
        return self.then.apply(self.first.apply(x, alpha_first, aux_first), alpha_then,
                               aux_then)

    def normalize_images(self, images):
        return self.then.normalize_images(images)

    def param_variance(self):
        return ops.concatenate([ops.cast(self.first.param_variance(), "float32"),
                                ops.cast(self.then.param_variance(), "float32")], axis=0)

    def param_moments(self):
        # Independent streams: block-diagonal.
        (m1, c1), (m2, c2) = self.first.param_moments(), self.then.param_moments()
        cov = np.zeros((self.num_params, self.num_params))
        k = len(m1)
        cov[:k, :k], cov[k:, k:] = c1, c2
        return np.concatenate([m1, m2]), cov

    def variant(self, **changes):
        if changes.get("crop", True) is False:
            return self.then.variant(**changes)
        return Composed(self.first, self.then.variant(**changes))
