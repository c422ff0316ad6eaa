"""InvCLR's gradient penalty: a one-VJP estimate of the representation's conditional variance.

With ĥ the normalised representation of view 1 and ε Rademacher signs, ``s = Σ ε·ĥ`` and
``G = ∂s/∂α``; the penalty is ``min(mean_{i,k} (G_i · (α'_{i,k} − α_i))², U)``. Since
``E_ε[(εᵀJδ)²] = ||Jδ||²`` this estimates ``E||ĥ(α') − ĥ(α)||²`` to first order without the
full Jacobian. ``G`` stays on the outer tape (double backpropagation), so the training
gradient reaches the encoder's weights through it.
"""

import tensorflow as tf

from invcl_tf import replicas


def at_least_float32(x):
    """``x`` as a float32 tensor, or float64 if it already is (for exactness checks)."""
    x = tf.convert_to_tensor(x)
    return x if x.dtype == tf.float64 else tf.cast(x, tf.float32)


def rademacher(seed, shape, dtype=tf.float32):
    """Stateless i.i.d. ±1 signs of ``shape`` from a length-2 integer ``seed``."""
    bits = tf.random.stateless_uniform(shape, seed, minval=0, maxval=2, dtype=tf.int32)
    return tf.cast(2 * bits - 1, dtype)


def penalty_terms(grad_alpha, alpha, alpha_extra):
    """Per-example mean over the N extra draws of ``(G_i · (α'_{i,k} − α_i))²``, shape [B]."""
    delta = alpha_extra - alpha[:, None, :]
    projection = tf.einsum("bk,bnk->bn", grad_alpha, delta)
    return tf.reduce_mean(tf.square(projection), axis=1)


def gradient_penalty(representation_fn, alpha, alpha_extra, clip, normalize=True, signs=None,
                     seed=None):
    """Returns ``(penalty, h)``: the clipped penalty of SPEC §1 and the representation of view 1.

    Args:
      representation_fn: maps ``alpha [B, K]`` to the encoder representation ``h [B, D]`` of
        view 1 transformed with ``alpha``.
      alpha: ``[B, K]`` parameters of view 1.
      alpha_extra: ``[B, N, K]`` extra parameters drawn from the same distribution.
      clip: U; above it the penalty is constant, so it contributes no gradient.
      normalize: penalise the L2-normalised representation (the authors' default).
      signs: Rademacher ε ``[B, D]``; drawn from ``seed`` (or statelessly at random) if None.
      seed: optional length-2 integer seed for ``signs``.
    """
    alpha = at_least_float32(alpha)
    alpha_extra = tf.cast(alpha_extra, alpha.dtype)
    if alpha.shape.rank != 2:
        raise ValueError(f"alpha must be [B, K], got shape {alpha.shape}")
    if alpha_extra.shape.rank != 3:
        raise ValueError(f"alpha_extra must be [B, N, K], got shape {alpha_extra.shape}")
    with tf.GradientTape() as tape:
        tape.watch(alpha)
        h = representation_fn(alpha)
        h_wide = tf.cast(h, alpha.dtype)  # float32 algebra even under mixed precision
        h_hat = tf.math.l2_normalize(h_wide, axis=1) if normalize else h_wide
        if signs is None:
            if seed is None:
                seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
            signs = rademacher(seed, tf.shape(h_hat))
        s = tf.reduce_sum(tf.cast(signs, h_hat.dtype) * h_hat)
    grad_alpha = tape.gradient(s, alpha, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    # Clip after the global-batch mean so N replicas clip what one device would.
    penalty = replicas.global_mean(tf.reduce_mean(penalty_terms(grad_alpha, alpha, alpha_extra)))
    return tf.minimum(penalty, tf.cast(clip, penalty.dtype)), h
