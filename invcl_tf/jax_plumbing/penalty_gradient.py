"""The penalty's inner gradient on JAX: ``jax.grad`` of ``s`` in α, traced inside whatever
differentiates the loss in the weights, so that outer gradient runs through ``G``."""

import jax
import jax.numpy as jnp
import numpy as np


def alpha_gradient(signed_fn, alpha):
    """``(∂s/∂α, aux)`` for ``s, aux = signed_fn(alpha)``."""
    return jax.grad(signed_fn, has_aux=True)(alpha)


def _key(seed):
    # A length-2 integer seed is the raw data of a threefry key, as TF's stateless seeds are.
    return jax.random.wrap_key_data(jnp.asarray(seed).astype(jnp.uint32), impl="threefry2x32")


def rademacher(seed, shape, dtype="float32"):
    """i.i.d. ±1 signs of ``shape``, a pure function of the length-2 integer ``seed``."""
    return jax.random.rademacher(_key(seed), tuple(int(s) for s in shape), dtype=dtype)


def random_seed():
    """A fresh length-2 seed from NumPy's generator (when the caller gives none)."""
    return jnp.asarray(np.random.default_rng().integers(0, 2**31 - 1, size=2), jnp.int32)


def global_mean(x):
    """The identity: under ``keras.distribution.DataParallel`` arrays are global already."""
    return x
