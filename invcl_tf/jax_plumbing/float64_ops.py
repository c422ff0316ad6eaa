"""jax.numpy's own functions where ``keras.ops`` on JAX computes float64 in float32 (``cos``,
``sin`` and ``mean`` cap their results at 32 bits there); used by ``invcl_tf.numerics``."""

from jax.numpy import cos, mean, sin

__all__ = ["cos", "mean", "sin"]
