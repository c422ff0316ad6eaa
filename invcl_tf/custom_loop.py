"""The training loop for ``MultiWorkerMirroredStrategy``, which Keras 3 ``fit`` cannot drive.

It runs the model's own ``train_step`` through ``strategy.run`` over a distributed dataset and
drives the usual Keras callbacks (progress bar, checkpoints, TensorBoard) by hand, so a
multi-worker run looks and resumes like a ``fit`` run.
"""

import keras
import tensorflow as tf


def is_chief(strategy):
    """Whether this process keeps the outputs: the chief, else worker 0, else the only task."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or resolver.task_type is None:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def pipeline_share(context, local_replicas, global_batch):
    """``(start, count)``: the rows of each global batch one input pipeline feeds.

    Pipeline p feeds its ``local_replicas`` replicas rows ``[(p·L + k)·b, (p·L + k + 1)·b)``,
    in replica order, so replica r of the cluster sees the rows replica r of a one-worker run
    would; only these rows are read, decoded and augmented on that worker.
    """
    per_replica = global_batch // (context.num_input_pipelines * local_replicas)
    return context.input_pipeline_id * local_replicas * per_replica, local_replicas * per_replica


def per_replica_batches(dataset, local_replicas):
    """Splits each element of a pipeline's share into ``local_replicas`` consecutive batches,
    the order in which ``distribute_datasets_from_function`` hands them to the replicas."""

    def split(batch):
        def rows(t):
            return tf.reshape(t, tf.concat([[local_replicas, -1], tf.shape(t)[1:]], 0))

        return tf.data.Dataset.from_tensor_slices(tf.nest.map_structure(rows, batch))

    return dataset.flat_map(split)


def fit(model, strategy, make_dataset, epochs, initial_epoch, steps_per_epoch, callbacks,
        verbose=1, global_batch=None):
    """Trains like ``model.fit`` under ``strategy``.

    ``make_dataset(rows)`` yields, per step, rows ``(start, count)`` of the ``global_batch``
    (see ``invcl_tf.data.pipeline.train_dataset``); each worker builds only its share.
    """
    local_replicas = len(strategy.extended.worker_devices)

    def dataset_fn(context):
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        share = make_dataset(pipeline_share(context, local_replicas, global_batch))
        return per_replica_batches(share, local_replicas).with_options(options)

    iterator = iter(strategy.distribute_datasets_from_function(dataset_fn))

    every = model.steps_per_execution  # steps per call, as fit runs them

    @tf.function
    def steps(it):
        if every > 1:  # a graph loop, not an unrolled one: one more copy of the step at most
            for _ in tf.range(every - 1):
                strategy.run(model.train_step, args=(next(it),))
        logs = strategy.run(model.train_step, args=(next(it),))
        return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
                for k, v in logs.items()}

    callback_list = keras.callbacks.CallbackList(
        callbacks, add_history=True, add_progbar=verbose != 0, model=model, verbose=verbose,
        epochs=epochs, steps=steps_per_epoch)
    model.stop_training = False
    callback_list.on_train_begin()
    logs = {}
    for epoch in range(initial_epoch, epochs):
        for metric in model.metrics:
            metric.reset_state()
        callback_list.on_epoch_begin(epoch)
        for first in range(0, steps_per_epoch, every):
            callback_list.on_train_batch_begin(first)
            logs = {k: float(v) for k, v in steps(iterator).items()}
            callback_list.on_train_batch_end(first + every - 1, logs)
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback_list.on_train_end(logs)
    return model.history
