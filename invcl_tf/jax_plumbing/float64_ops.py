"""jax.numpy's own functions where ``keras.ops`` on JAX computes float64 in float32 (``cos``
and ``sin`` promote against a weak float to 32 bits there); used by ``invcl_tf.numerics``."""

from jax.numpy import cos, sin

__all__ = ["cos", "sin"]
