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


def replica_slices(dataset, context, local_replicas):
    """Per-replica elements of a dataset of global batches, for one input pipeline.

    Pipeline p feeds its ``local_replicas`` replicas rows ``[(p·L + k)·b, (p·L + k + 1)·b)``
    of each global batch, in replica order, so replica r of the cluster sees the rows replica
    r of a one-worker run would.
    """
    pipelines, pipeline_id = context.num_input_pipelines, context.input_pipeline_id
    replicas = pipelines * local_replicas

    def split(batch):
        def rows(t):
            per_replica = tf.shape(t)[0] // replicas
            start = pipeline_id * local_replicas * per_replica
            mine = t[start:start + local_replicas * per_replica]
            return tf.reshape(mine, tf.concat([[local_replicas, per_replica],
                                               tf.shape(t)[1:]], 0))

        return tf.data.Dataset.from_tensor_slices(tf.nest.map_structure(rows, batch))

    return dataset.flat_map(split)


def fit(model, strategy, make_dataset, epochs, initial_epoch, steps_per_epoch, callbacks,
        verbose=1):
    """Trains like ``model.fit`` under ``strategy``; ``make_dataset()`` yields global batches."""
    local_replicas = len(strategy.extended.worker_devices)

    def dataset_fn(context):
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        return replica_slices(make_dataset(), context, local_replicas).with_options(options)

    iterator = iter(strategy.distribute_datasets_from_function(dataset_fn))

    @tf.function
    def step(it):
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
        for batch in range(steps_per_epoch):
            callback_list.on_train_batch_begin(batch)
            logs = {k: float(v) for k, v in step(iterator).items()}
            callback_list.on_train_batch_end(batch, logs)
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback_list.on_train_end(logs)
    return model.history
