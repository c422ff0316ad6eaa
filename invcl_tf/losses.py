"""The NT-Xent contrastive loss (SimCLR), as the InvCLR authors compute it.

Written in ``keras.ops`` only: the TensorFlow and the JAX backends run this same code.
"""

from keras import ops

from invcl_tf.numerics import l2_normalize, mean, wide_dtype

_MASKED_LOGIT = -1e9


def nt_xent(z1, z2, temperature=0.5):
    """NT-Xent of two views' projections ``z1, z2 [B, P]``, averaged over all 2B anchors.

    Logits are cosine similarities over τ among the 2B projections with self-similarity
    masked out; each anchor's positive is the other view of the same example.
    """
    z1 = ops.convert_to_tensor(z1)
    z2 = ops.cast(ops.convert_to_tensor(z2), z1.dtype)
    return nt_xent_against(z1, z2, z1, z2, 0, temperature)


def nt_xent_against(z1, z2, keys1, keys2, offset, temperature=0.5):
    """NT-Xent of local anchors ``z1, z2 [b, P]`` against the global batch ``keys [B, P]``.

    ``offset`` is the index of the local batch's first example in the global batch, so each
    anchor can find itself (masked) and its positive among the keys. Returns the mean over
    the 2b local anchors; under data parallelism the mean over replicas of this value is the
    one-device loss of the global batch.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    dtype = wide_dtype(z1)
    anchors = l2_normalize(ops.cast(ops.concatenate([z1, z2], 0), dtype), axis=1)
    keys = l2_normalize(ops.cast(ops.concatenate([keys1, keys2], 0), dtype), axis=1)
    b = ops.shape(z1)[0]
    global_b = ops.shape(keys1)[0]
    logits = ops.matmul(anchors, ops.transpose(keys)) / temperature
    # Row r of the local anchors is key `self_index`; its positive is the other view's copy.
    local = ops.arange(b, dtype="int32") + ops.cast(offset, "int32")
    self_index = ops.concatenate([local, local + global_b], 0)
    positive = ops.concatenate([local + global_b, local], 0)
    logits = logits + _MASKED_LOGIT * ops.one_hot(self_index, 2 * global_b, dtype=dtype)
    chosen = ops.take_along_axis(logits, ops.expand_dims(positive, 1), axis=1)[:, 0]
    return mean(ops.logsumexp(logits, axis=1) - chosen)
