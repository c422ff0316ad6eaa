"""The interface every differentiable transformation t(x, α) implements.

The input pipeline calls ``prepare_view`` (non-differentiable per-view work such as crops),
``sample_params`` and ``sample_aux`` with stateless seeds; the train step calls ``apply``
inside its gradient tape, so the penalty can differentiate the representation w.r.t. α.
"""

import abc

import tensorflow as tf


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
        return tf.zeros([batch_size, self.num_aux], tf.float32)

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
