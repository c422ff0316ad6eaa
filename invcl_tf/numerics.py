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


def mean(x, axis=None):
    """The mean as a sum over a count: ``keras.ops.mean`` on JAX reduces float64 in float32."""
    count = 1
    for dim in (range(len(x.shape)) if axis is None else [axis]):
        count = count * ops.shape(x)[dim]
    return ops.sum(x, axis=axis) / ops.cast(count, x.dtype)


def l2_normalize(x, axis=-1):
    """``x / ||x||`` along ``axis``, the squared norm floored at 1e-12 (as TensorFlow's)."""
    squared = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return x * ops.rsqrt(ops.maximum(squared, ops.cast(_NORM_EPSILON, x.dtype)))


def _keeping_float64(name, x):
    # Keras's JAX backend computes ops.cos and ops.sin of float64 in float32 (its promotion
    # rules cap results at 32 bits), which float64 exactness checks cannot use.
    if keras.backend.standardize_dtype(x.dtype) == "float64":
        return getattr(backends.plumbing("float64_ops"), name)(x)
    return getattr(ops, name)(x)


def cos(x):
    """``keras.ops.cos``, in float64 for float64 ``x`` on every backend."""
    return _keeping_float64("cos", x)


def sin(x):
    """``keras.ops.sin``, in float64 for float64 ``x`` on every backend."""
    return _keeping_float64("sin", x)
