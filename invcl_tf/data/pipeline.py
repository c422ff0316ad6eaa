"""The training input pipeline: every random draw is a function of (seed, epoch, step).

Each element is the randomness of one global batch: the inputs of two views (after the
transform's non-differentiable ``prepare_view``), α¹, α², the extra α′ for the penalty, the
per-example non-differentiated choices, and a per-step seed for the penalty's signs. The
train step applies the differentiable transformation itself, inside its tape.
"""

import tensorflow as tf

# Salts that keep independent streams apart when folded into a seed.
STREAM_TRAIN, STREAM_EVAL, STREAM_DATA = 1, 2, 3
_VIEW1, _VIEW2, _EXTRA, _SIGNS = range(4)


def fold(seed, *values):
    """Folds integers into a length-2 stateless seed (a fresh, independent stream)."""
    seed = tf.convert_to_tensor(seed, tf.int64)
    if seed.shape.rank == 0:
        seed = tf.stack([seed, tf.constant(0, tf.int64)])
    for value in values:
        seed = tf.random.experimental.stateless_fold_in(seed, tf.cast(value, tf.int64))
    return seed


def _share(rows, local):
    """``(start, total)`` of rows; the whole batch when ``rows`` is None."""
    return (0, local) if rows is None else rows


def random_view(transform, x, seed, rows=None):
    """One random view of the batch ``x``: ``(prepared x, α [B, K], aux [B, A])``.

    ``rows=(start, total)``: ``x`` holds rows ``start ..`` of a batch of ``total``, and gets
    exactly the draws those rows get in the whole batch (a worker's share).
    """
    local = tf.shape(x)[0]
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
    local = tf.shape(x)[0]
    x1, alpha1, aux1 = random_view(transform, x, fold(seed, _VIEW1), rows)
    x2, alpha2, aux2 = random_view(transform, x, fold(seed, _VIEW2), rows)
    batch = {"x1": x1, "x2": x2, "alpha1": alpha1, "alpha2": alpha2, "aux1": aux1, "aux2": aux2,
             # One seed per step, repeated per example so a strategy splits it like the rest.
             "sign_seed": tf.tile(fold(seed, _SIGNS)[None], [local, 1])}
    if num_extra:
        start, total = _share(rows, local)
        extra = transform.sample_params(fold(seed, _EXTRA), [total, num_extra])
        batch["alpha_extra"] = extra if rows is None else extra[start:start + local]
    return batch


def steps_per_epoch(num_examples, batch_size):
    """Whole batches per epoch (the last partial batch is dropped, as the authors do)."""
    if batch_size < 2:
        raise ValueError(f"train.batch_size must be at least 2 (NT-Xent needs negatives), "
                         f"got {batch_size}")
    if num_examples < batch_size:
        raise ValueError(f"train.batch_size ({batch_size}) exceeds the {num_examples} training "
                         "examples: lower train.batch_size or raise dataset.train_size")
    return num_examples // batch_size


def train_dataset(inputs, transform, batch_size, num_extra, seed, start_epoch, epochs,
                  start_step=0, rows=None):
    """Batches from step ``start_step`` of epoch ``start_epoch`` to the end of ``epochs - 1``,
    identical whenever they are drawn.

    Args:
      inputs: all training inputs: ``[N, ...]`` held in memory (a tensor or array, which
        becomes a constant of the graph: for small data), inputs drawn from a seed inside the
        graph (``invcl_tf.data.sources.GeneratedTargets``, Spirograph), or a streamed image
        split (``invcl_tf.data.sources.StreamedImages``: a folder, TFDS, CIFAR) read in each
        epoch's shuffled order.
      transform: a ``DifferentiableTransform``.
      batch_size: the global batch size.
      num_extra: extra α′ per example for the penalty (0: none drawn).
      seed: the run's integer seed.
      start_epoch, epochs, start_step: resume mid-epoch; the result has
        ``(epochs - start_epoch) * steps_per_epoch - start_step`` elements.
      rows: ``(start, count)``: only rows ``start .. start + count - 1`` of every global
        batch, read, decoded and augmented exactly as in the whole batch (a worker's share).
    """
    streamed = hasattr(inputs, "split")
    generated = hasattr(inputs, "in_graph")  # drawn from a seed inside the graph, per epoch
    if not (streamed or generated):
        inputs = tf.convert_to_tensor(inputs)
    n = len(inputs) if streamed or generated else int(inputs.shape[0])
    spe = steps_per_epoch(n, batch_size)
    base = fold(seed, STREAM_TRAIN)

    def epoch_batches(epoch):
        epoch_seed = fold(base, epoch)
        steps = tf.data.Dataset.range(spe)
        start, count = _share(rows, batch_size)
        if streamed:  # the split shuffles itself from the epoch's seed
            split = inputs.split
            batches = (split.epoch(epoch_seed).batch(batch_size, drop_remainder=True)
                       if rows is None else split.epoch_rows(epoch_seed, batch_size, rows))
        else:
            order = tf.argsort(tf.random.stateless_uniform([n], epoch_seed))
            order = tf.reshape(order[:spe * batch_size], [spe, batch_size])
            batches = tf.data.Dataset.from_tensor_slices(order[:, start:start + count])

        table = inputs.in_graph() if generated else inputs

        def make(step, batch):
            x = batch if streamed else tf.gather(table, batch)
            return draw_views(transform, x, fold(epoch_seed, step), num_extra,
                              None if rows is None else (start, batch_size))

        skip = tf.where(epoch == start_epoch, tf.cast(start_step, tf.int64), 0)
        return tf.data.Dataset.zip(steps, batches).take(spe).skip(skip).map(
            make, num_parallel_calls=tf.data.AUTOTUNE)

    epochs_ds = tf.data.Dataset.range(start_epoch, epochs)
    return epochs_ds.flat_map(epoch_batches).prefetch(tf.data.AUTOTUNE)
