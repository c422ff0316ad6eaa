"""Stateless draws on JAX: pure functions of a length-2 integer seed through ``jax.random``
(a threefry key whose raw data is the seed). The streams differ from TensorFlow's; each
backend is reproducible on its own."""

import jax
import jax.numpy as jnp
import numpy as np


def _key(seed):
    return jax.random.wrap_key_data(jnp.asarray(seed).astype(jnp.uint32), impl="threefry2x32")


def _shape(shape):
    return tuple(int(s) for s in np.asarray(shape).reshape(-1))


def uniform(seed, shape, dtype="float32"):
    """U[0, 1) of ``shape``."""
    return jax.random.uniform(_key(seed), _shape(shape), dtype=dtype)


def fold_in(seed, data):
    """A new length-2 seed from ``seed`` and the integer ``data`` (a stream per ``data``)."""
    return jax.random.key_data(jax.random.fold_in(_key(seed), data)).astype(jnp.int32)


def rademacher(seed, shape, dtype="float32"):
    """i.i.d. ±1 signs of ``shape``."""
    return jax.random.rademacher(_key(seed), _shape(shape), dtype=dtype)


def random_seed():
    """A fresh length-2 seed from NumPy's generator (when the caller gives none)."""
    return jnp.asarray(np.random.default_rng().integers(0, 2**31 - 1, size=2), jnp.int32)


def fold(seed, *values):
    """Folds integers into a length-2 seed (a fresh, independent stream per value)."""
    seed = jnp.asarray(seed)
    if seed.ndim == 0:
        seed = jnp.stack([seed, jnp.zeros_like(seed)])
    key = _key(seed)
    for value in values:
        key = jax.random.fold_in(key, value)
    return jax.random.key_data(key).astype(jnp.int32)
