"""``keras.ops``'s own functions: on TensorFlow they keep float64 (see the JAX module)."""

from keras.ops import cos, mean, sin

__all__ = ["cos", "mean", "sin"]
