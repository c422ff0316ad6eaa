"""The NT-Xent contrastive loss (SimCLR), as the InvCLR authors compute it."""

import tensorflow as tf

_MASKED_LOGIT = -1e9


def nt_xent(z1, z2, temperature=0.5):
    """NT-Xent of two views' projections ``z1, z2 [B, P]``, averaged over all 2B anchors.

    Logits are cosine similarities over τ among the 2B projections with self-similarity
    masked out; each anchor's positive is the other view of the same example.
    """
    z1 = tf.convert_to_tensor(z1)
    z2 = tf.convert_to_tensor(z2, dtype=z1.dtype)
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
    # Softmax over thousands of logits wants float32 under mixed precision (float64 is kept).
    dtype = tf.float64 if z1.dtype == tf.float64 else tf.float32
    anchors = tf.math.l2_normalize(tf.cast(tf.concat([z1, z2], 0), dtype), axis=1)
    keys = tf.math.l2_normalize(tf.cast(tf.concat([keys1, keys2], 0), dtype), axis=1)
    b = tf.shape(z1)[0]
    global_b = tf.shape(keys1)[0]
    logits = tf.matmul(anchors, keys, transpose_b=True) / temperature
    # Row r of the local anchors is key `self_index`; its positive is the other view's copy.
    local = tf.range(b)
    self_index = tf.concat([local + offset, local + offset + global_b], 0)
    positive = tf.concat([local + offset + global_b, local + offset], 0)
    self_mask = tf.one_hot(self_index, 2 * global_b, dtype=dtype)
    logits = logits + _MASKED_LOGIT * self_mask
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=positive, logits=logits)
    return tf.reduce_mean(losses)
