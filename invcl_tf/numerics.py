"""Small ``keras.ops`` helpers the method's math shares, exact in float64 on every backend."""

import keras
from keras import ops

from invcl_tf import backends

#: tf.math.l2_normalize's floor on the squared norm, kept so TF results do not move.
_NORM_EPSILON = 1e-12


def wide_dtype(x):
    """float64 for float64 ``x``, else float32: softmaxes and the penalty's algebra never run
    in 16 bits under mixed precision."""
    return "float64" if keras.backend.standardize_dtype(x.dtype) == "float64" else "float32"


def unknown_rank(x):
    """Whether ``x``'s rank is unknown until it runs (a TF tensor in a tf.function traced
    without an input signature); other backends always know it."""
    return getattr(x.shape, "rank", 0) is None


def ensure_shape(x, shape):
    """``x``, checked against ``shape`` when it runs: for tensors of ``unknown_rank``."""
    import tensorflow as tf  # only TensorFlow has tensors whose rank is not known

    return tf.ensure_shape(x, shape)


def mean(x, axis=None, keepdims=False):
    """``keras.ops.mean``, in float64 for float64 ``x`` on every backend."""
    return _keeping_float64("mean", x, axis=axis, keepdims=keepdims)


def l2_normalize(x, axis=-1):
    """``x / ||x||`` along ``axis``, the squared norm floored at 1e-12 (as TensorFlow's)."""
    squared = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return x * ops.rsqrt(ops.maximum(squared, ops.cast(_NORM_EPSILON, x.dtype)))


def _keeping_float64(name, x, **kwargs):
    # Keras's JAX backend computes ops.cos, ops.sin and ops.mean of float64 in float32 (its
    # promotion rules cap results at 32 bits), which float64 exactness checks cannot use.
    if keras.backend.standardize_dtype(x.dtype) == "float64":
        return getattr(backends.plumbing("float64_ops"), name)(x, **kwargs)
    return getattr(ops, name)(x, **kwargs)


def cos(x):
    """``keras.ops.cos``, in float64 for float64 ``x`` on every backend."""
    return _keeping_float64("cos", x)


def sin(x):
    """``keras.ops.sin``, in float64 for float64 ``x`` on every backend."""
    return _keeping_float64("sin", x)
