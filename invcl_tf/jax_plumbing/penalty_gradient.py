"""The penalty's inner gradient on JAX: ``jax.grad`` of ``s`` in α, traced inside whatever
differentiates the loss in the weights, so that outer gradient runs through ``G``."""

import jax


def alpha_gradient(signed_fn, alpha):
    """``(∂s/∂α, aux)`` for ``s, aux = signed_fn(alpha)``."""
    return jax.grad(signed_fn, has_aux=True)(alpha)
