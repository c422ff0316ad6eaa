"""The penalty's inner gradient on TensorFlow: a ``tf.GradientTape`` nested in the train
step's tape, so the outer tape differentiates ``G`` itself (double backpropagation)."""

import tensorflow as tf


def alpha_gradient(signed_fn, alpha):
    """``(∂s/∂α, aux)`` for ``s, aux = signed_fn(alpha)``; α with no path to ``s`` gets zeros."""
    with tf.GradientTape() as tape:
        tape.watch(alpha)
        s, aux = signed_fn(alpha)
    return tape.gradient(s, alpha, unconnected_gradients=tf.UnconnectedGradients.ZERO), aux
