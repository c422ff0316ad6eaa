"""Replicas must share the global batch equally; their per-backend reductions are
``replica_ops`` in ``invcl_tf.tensorflow_plumbing`` and ``invcl_tf.jax_plumbing``."""

from invcl_tf import errors


class UnevenBatchError(errors.UserError, ValueError):
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
