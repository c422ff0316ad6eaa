"""Stateless draws on TensorFlow: pure functions of a length-2 integer seed (``tf.random``'s
stateless ops), so a resumed run or one on N replicas draws what one device would."""

import tensorflow as tf


def uniform(seed, shape, dtype="float32"):
    """U[0, 1) of ``shape`` (a list, or a 1-D integer tensor inside ``tf.data``)."""
    return tf.random.stateless_uniform(shape, seed, dtype=dtype)


def fold_in(seed, data):
    """A new length-2 seed from ``seed`` and the integer ``data`` (a stream per ``data``)."""
    return tf.random.experimental.stateless_fold_in(seed, data)


def rademacher(seed, shape, dtype="float32"):
    """i.i.d. ±1 signs of ``shape``."""
    bits = tf.random.stateless_uniform(shape, seed, minval=0, maxval=2, dtype=tf.int32)
    return tf.cast(2 * bits - 1, dtype)


def random_seed():
    """A fresh length-2 seed from TF's global generator (when the caller gives none)."""
    return tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)


def fold(seed, *values):
    """Folds integers into a length-2 seed (a fresh, independent stream per value)."""
    seed = tf.convert_to_tensor(seed, tf.int64)
    if seed.shape.rank == 0:
        seed = tf.stack([seed, tf.constant(0, tf.int64)])
    for value in values:
        seed = tf.random.experimental.stateless_fold_in(seed, tf.cast(value, tf.int64))
    return seed
