"""Which Keras backend runs, and its plumbing: the method's math (``losses``, ``penalty``)
is ``keras.ops`` for every backend; what differs per backend (the penalty's inner gradient,
random signs, the cross-replica mean) lives in ``tensorflow_plumbing`` or ``jax_plumbing``."""

import importlib

import keras

from invcl_tf import errors

SUPPORTED = ("tensorflow", "jax")


def name():
    """The running Keras backend's name (``keras.backend.backend()``)."""
    return keras.backend.backend()


def plumbing(module):
    """The running backend's ``module`` of its plumbing package (e.g. ``"penalty_gradient"``)."""
    backend = name()
    if backend not in SUPPORTED:
        raise errors.InputError(
            f"KERAS_BACKEND={backend}: InvCLR runs on {' or '.join(SUPPORTED)}; set "
            f"KERAS_BACKEND=tensorflow (the default) or KERAS_BACKEND=jax")
    return importlib.import_module(f"invcl_tf.{backend}_plumbing.{module}")
