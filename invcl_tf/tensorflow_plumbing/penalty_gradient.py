"""The penalty's inner gradient on TensorFlow: a ``tf.GradientTape`` nested in the train
step's tape, so the outer tape differentiates ``G`` itself (double backpropagation)."""

import tensorflow as tf

from invcl_tf import replicas


def alpha_gradient(signed_fn, alpha):
    """``(∂s/∂α, aux)`` for ``s, aux = signed_fn(alpha)``; α with no path to ``s`` gets zeros."""
    with tf.GradientTape() as tape:
        tape.watch(alpha)
        s, aux = signed_fn(alpha)
    return tape.gradient(s, alpha, unconnected_gradients=tf.UnconnectedGradients.ZERO), aux


def rademacher(seed, shape, dtype="float32"):
    """Stateless i.i.d. ±1 signs of ``shape`` from a length-2 integer ``seed``."""
    bits = tf.random.stateless_uniform(shape, seed, minval=0, maxval=2, dtype=tf.int32)
    return tf.cast(2 * bits - 1, dtype)


def random_seed():
    """A fresh length-2 seed from TF's global generator (when the caller gives none)."""
    return tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)


def global_mean(x):
    """Mean over replicas of a per-replica mean (identity on one device)."""
    return replicas.global_mean(x)
