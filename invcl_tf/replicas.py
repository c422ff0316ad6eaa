"""Replicas must share the global batch equally; their per-backend reductions are
``replica_ops`` in ``invcl_tf.tensorflow_plumbing`` and ``invcl_tf.jax_plumbing``."""

import keras

from invcl_tf import errors


class ReplicaError(errors.UserError, ValueError):
    """The replicas cannot run what was asked."""


class UnevenBatchError(ReplicaError):
    """The global batch does not split into equal per-replica batches."""


def require_even_split(batch_size, num_replicas, name="batch_size"):
    """Raises ``UnevenBatchError`` unless ``batch_size`` splits equally over the replicas.

    The NT-Xent offsets, the sign slices and ``global_mean`` assume equal local batches;
    TensorFlow would split 16 rows over 3 replicas as 6/5/5. ``name`` is what the message
    calls the batch size (e.g. the config flag).
    """
    batch_size, num_replicas = int(batch_size), int(num_replicas)
    if num_replicas > 1 and batch_size % num_replicas:
        below = batch_size // num_replicas * num_replicas
        above = below + num_replicas
        nearest = f"{below} or {above}" if below > 0 else str(above)
        raise UnevenBatchError(
            f"{name}={batch_size} does not split equally over {num_replicas} replicas (each "
            f"replica must get the same number of rows); use a multiple of {num_replicas}, "
            f"e.g. {nearest}")


def require_single_for_lazy_penalty(every_steps, num_replicas):
    """Raises ``ReplicaError`` for a penalty every k > 1 steps over several TensorFlow
    replicas: ``tf.distribute`` cannot reduce across replicas (batch norm, the penalty's mean)
    inside the step's conditional on CPUs, nor on GPUs without XLA."""
    if every_steps > 1 and num_replicas > 1 and keras.backend.backend() == "tensorflow":
        raise ReplicaError(
            f"--config.gp.every_steps={every_steps} runs on one TensorFlow replica, or on JAX "
            f"(KERAS_BACKEND=jax), not over {num_replicas} tf.distribute replicas; use "
            "--config.gp.every_steps=1 there")
