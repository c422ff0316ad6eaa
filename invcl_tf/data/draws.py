"""The randomness of one training batch, for every backend: the inputs of two views (after
the transform's non-differentiable ``prepare_view``), α¹, α², the extra α′ for the penalty,
the per-example non-differentiated choices and a per-step seed for the penalty's signs, each a
function of a stateless seed. The train step applies the differentiable transformation
itself, inside its gradient. The pipelines that feed it are per backend (``pipeline``:
``tf.data``; ``invcl_tf.jax_plumbing.input_pipeline``)."""

from keras import ops

from invcl_tf import backends

# Salts that keep independent streams apart when folded into a seed.
STREAM_TRAIN, STREAM_EVAL, STREAM_DATA = 1, 2, 3
_VIEW1, _VIEW2, _EXTRA, _SIGNS = range(4)


def fold(seed, *values):
    """Folds integers into a length-2 stateless seed (a fresh, independent stream); ``seed``
    may be an integer."""
    return backends.plumbing("stateless_random").fold(seed, *values)


def _share(rows, local):
    """``(start, total)`` of rows; the whole batch when ``rows`` is None."""
    return (0, local) if rows is None else rows


def random_view(transform, x, seed, rows=None):
    """One random view of the batch ``x``: ``(prepared x, α [B, K], aux [B, A])``.

    ``rows=(start, total)``: ``x`` holds rows ``start ..`` of a batch of ``total``, and gets
    exactly the draws those rows get in the whole batch (a worker's share).
    """
    local = ops.shape(x)[0]
    if rows is None:
        return (transform.prepare_view(x, fold(seed, 0)),
                transform.sample_params(fold(seed, 1), [local]),
                transform.sample_aux(fold(seed, 2), local))
    start, total = rows
    return (transform.prepare_view(x, fold(seed, 0), rows=rows),
            transform.sample_params(fold(seed, 1), [total])[start:start + local],
            transform.sample_aux(fold(seed, 2), total)[start:start + local])


def draw_views(transform, x, seed, num_extra=0, rows=None):
    """The randomness of one batch ``x`` from a length-2 ``seed``; see the module docstring.

    ``rows=(start, total)`` draws for rows ``start ..`` of a ``total``-row batch only.
    """
    local = ops.shape(x)[0]
    x1, alpha1, aux1 = random_view(transform, x, fold(seed, _VIEW1), rows)
    x2, alpha2, aux2 = random_view(transform, x, fold(seed, _VIEW2), rows)
    batch = {"x1": x1, "x2": x2, "alpha1": alpha1, "alpha2": alpha2, "aux1": aux1, "aux2": aux2,
             # One seed per step, repeated per example so a strategy splits it like the rest.
             "sign_seed": ops.tile(fold(seed, _SIGNS)[None], [local, 1])}
    if num_extra:
        start, total = _share(rows, local)
        extra = transform.sample_params(fold(seed, _EXTRA), [total, num_extra])
        batch["alpha_extra"] = extra if rows is None else extra[start:start + local]
    return batch
