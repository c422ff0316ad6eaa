"""Cross-replica helpers under ``tf.distribute``, the identity on one device.

Each replica sees a slice of the global batch; these make the loss, the penalty and the
random signs those of one device on the whole global batch.
"""

import tensorflow as tf


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
