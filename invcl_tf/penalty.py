"""InvCLR's gradient penalty: a one-VJP estimate of the representation's conditional variance.

With ĥ the normalised representation of view 1 and ε Rademacher signs, ``s = Σ ε·ĥ`` and
``G = ∂s/∂α``; the penalty is ``min(mean_{i,k} (G_i · (α'_{i,k} − α_i))², U)``. Since
``E_ε[(εᵀJδ)²] = ||Jδ||²`` this estimates ``E||ĥ(α') − ĥ(α)||²`` to first order without the
full Jacobian. ``G`` stays on the outer tape (double backpropagation), so the training
gradient reaches the encoder's weights through it.

Written in ``keras.ops``, for every backend; the inner gradient ``G`` (a nested
``tf.GradientTape`` or ``jax.grad``), the random signs and the cross-replica mean come from
the backend's plumbing (``invcl_tf.tensorflow_plumbing``, ``invcl_tf.jax_plumbing``).
"""

from keras import ops

from invcl_tf import backends
from invcl_tf.numerics import l2_normalize, mean, wide_dtype


def at_least_float32(x):
    """``x`` as a float32 tensor, or float64 if it already is (for exactness checks)."""
    x = ops.convert_to_tensor(x)
    return ops.cast(x, wide_dtype(x))


def rademacher(seed, shape, dtype="float32"):
    """Stateless i.i.d. ±1 signs of ``shape`` from a length-2 integer ``seed`` (each backend
    draws its own stream)."""
    return backends.plumbing("stateless_random").rademacher(seed, shape, dtype)


def signed_sum(h, signs, normalize, dtype):
    """``s = Σ ε·ĥ`` in ``dtype`` (float32 even under mixed precision), with ``ĥ = h/||h||``
    when ``normalize``: the scalar whose gradient in α is the penalty's ``G``."""
    h = ops.cast(h, dtype)
    h_hat = l2_normalize(h, axis=1) if normalize else h
    return ops.sum(ops.cast(signs, dtype) * h_hat)


def penalty_terms(grad_alpha, alpha, alpha_extra):
    """Per-example mean over the N extra draws of ``(G_i · (α'_{i,k} − α_i))²``, shape [B]."""
    delta = alpha_extra - ops.expand_dims(alpha, 1)
    projection = ops.einsum("bk,bnk->bn", grad_alpha, delta)
    return mean(ops.square(projection), axis=1)


def expected_terms(grad_alpha, alpha, mean, cov):
    """Per-example expectation over α′ of ``(G_i · (α′ − α_i))²``, shape [B], in closed form:
    ``G_iᵀ Σ G_i + (G_i · (μ − α_i))²`` for α′ of mean μ ``[K]`` and covariance Σ ``[K, K]``."""
    spread = ops.sum(ops.matmul(grad_alpha, cov) * grad_alpha, axis=1)
    offset = ops.sum(grad_alpha * (ops.expand_dims(mean, 0) - alpha), axis=1)
    return spread + ops.square(offset)


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
    penalty, h, _ = gradient_penalty_with_state(lambda a: (representation_fn(a), ()), alpha,
                                                alpha_extra, clip, normalize, signs, seed)
    return penalty, h


def gradient_penalty_with_state(representation_fn, alpha, alpha_extra, clip, normalize=True,
                                signs=None, seed=None, moments=None):
    """``gradient_penalty`` for a ``representation_fn`` that returns ``(h, state)``: state such
    as batch norm's new moving statistics, which on JAX must leave the inner gradient as its
    output rather than be assigned inside it. Returns ``(penalty, h, state)``.

    ``moments=(μ, Σ)``, the mean ``[K]`` and covariance ``[K, K]`` of α′'s distribution,
    replaces the mean over the draws ``alpha_extra`` (then unused) by its expectation.
    """
    alpha = at_least_float32(alpha)
    if len(alpha.shape) != 2:
        raise ValueError(f"alpha must be [B, K], got shape {alpha.shape}")
    if moments is None:
        alpha_extra = ops.cast(alpha_extra, alpha.dtype)
        if len(alpha_extra.shape) != 3:
            raise ValueError(f"alpha_extra must be [B, N, K], got shape {alpha_extra.shape}")

    def signed(a):
        h, state = representation_fn(a)
        eps = signs
        if eps is None:
            draws = backends.plumbing("stateless_random")
            eps = draws.rademacher(draws.random_seed() if seed is None else seed, ops.shape(h))
        return signed_sum(h, eps, normalize, alpha.dtype), (h, state)

    grad_alpha, (h, state) = backends.plumbing("penalty_gradient").alpha_gradient(signed, alpha)
    if moments is None:
        terms = penalty_terms(grad_alpha, alpha, alpha_extra)
    else:
        terms = expected_terms(grad_alpha, alpha, *(ops.cast(m, alpha.dtype) for m in moments))
    # Clip after the global-batch mean so N replicas clip what one device would.
    penalty = backends.plumbing("replica_ops").global_mean(mean(terms))
    return ops.minimum(penalty, ops.cast(clip, penalty.dtype)), h, state
