"""JAX's plumbing for the shared math: gradients through ``jax.grad`` (nested inside the
outer differentiation), ``jax.random`` draws; no TensorFlow is imported here."""
