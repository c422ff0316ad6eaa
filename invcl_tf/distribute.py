"""Chooses the ``tf.distribute`` strategy and the precision policy a config asks for."""

import keras
import tensorflow as tf

STRATEGIES = ("auto", "none", "mirrored", "multi_worker")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


def strategy_for(name):
    """``auto``: mirrored over all GPUs when there are several, else the default strategy.

    ``multi_worker`` reads the cluster from ``TF_CONFIG``; create it before any other
    TensorFlow op runs in the process.
    """
    if name not in STRATEGIES:
        raise ValueError(f"--config.distribute: unknown strategy {name!r}; choose one of "
                         f"{', '.join(STRATEGIES)}")
    if name == "auto":
        name = "mirrored" if len(tf.config.list_logical_devices("GPU")) > 1 else "none"
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.MirroredStrategy()


def set_precision(name):
    """Sets Keras's global dtype policy; the loss and the penalty stay float32 regardless."""
    if name not in PRECISIONS:
        raise ValueError(f"--config.train.precision: unknown precision {name!r}; choose one "
                         f"of {', '.join(PRECISIONS)}")
    keras.mixed_precision.set_global_policy(name)
