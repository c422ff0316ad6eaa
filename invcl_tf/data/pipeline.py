"""The training input pipeline on TensorFlow (``tf.data``): every random draw is a function
of (seed, epoch, step); each element is one global batch's draws (``invcl_tf.data.draws``).
"""

import tensorflow as tf

from invcl_tf.data.draws import STREAM_TRAIN, draw_views, fold

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
        start, count = (0, batch_size) if rows is None else rows
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
            drawn = draw_views(transform, x, fold(epoch_seed, step), num_extra,
                               None if rows is None else (start, batch_size))
            # The global step index, per example so a strategy splits it like the rest.
            drawn["step"] = tf.fill([count], epoch * spe + step)
            return drawn

        skip = tf.where(epoch == start_epoch, tf.cast(start_step, tf.int64), 0)
        return tf.data.Dataset.zip(steps, batches).take(spe).skip(skip).map(
            make, num_parallel_calls=tf.data.AUTOTUNE)

    epochs_ds = tf.data.Dataset.range(start_epoch, epochs)
    return epochs_ds.flat_map(epoch_batches).prefetch(tf.data.AUTOTUNE)
