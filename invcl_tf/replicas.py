"""Cross-replica helpers that reduce to the identity on one device.

Under a ``tf.distribute`` strategy each replica sees a slice of the global batch; these make
the loss, the penalty and the random signs those of one device on the whole global batch.
"""

import tensorflow as tf

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


def replica_info():
    """Returns ``(replica_id, num_replicas)`` of the current replica context."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None:  # cross-replica context: treat as one device
        return 0, 1
    return ctx.replica_id_in_sync_group, ctx.num_replicas_in_sync


def global_mean(x):
    """Mean of a per-replica mean over replicas (equal local batches), differentiable."""
    _, n = replica_info()
    if n == 1:
        return x
    ctx = tf.distribute.get_replica_context()
    return ctx.all_reduce(tf.distribute.ReduceOp.SUM, x) / n


def gather(x):
    """Concatenates ``x`` over replicas along axis 0 (differentiable ``all_gather``)."""
    _, n = replica_info()
    if n == 1:
        return x
    return tf.distribute.get_replica_context().all_gather(x, axis=0)


def local_slice(global_tensor, local_batch):
    """This replica's rows of a tensor drawn for the global batch of ``n·local_batch`` rows."""
    rid, _ = replica_info()
    start = tf.cast(rid, tf.int32) * local_batch
    return global_tensor[start:start + local_batch]
