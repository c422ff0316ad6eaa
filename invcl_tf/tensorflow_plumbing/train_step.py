"""``InvCLRModel``'s training on TensorFlow: the step under a ``tf.GradientTape`` (the
penalty's own tape nested inside it), per replica under ``tf.distribute``."""

import tensorflow as tf

from invcl_tf import replicas
from invcl_tf.tensorflow_plumbing import replica_ops


class TrainStep:
    """The TensorFlow half of ``InvCLRModel``: ``train_step`` and ``fit``."""

    def fit(self, x=None, y=None, batch_size=None, **kwargs):
        """``keras.Model.fit``, refusing a global batch that does not split over the replicas.

        The batch size is read from ``batch_size`` or from a ``tf.data`` input's static shape
        (``invcl_tf.data.pipeline`` batches have one; batch with ``drop_remainder=True``).
        """
        size = batch_size
        if isinstance(x, tf.data.Dataset):
            size = tf.nest.flatten(x.element_spec)[0].shape[0]
        if size is not None:
            replicas.require_even_split(size, self.distribute_strategy.num_replicas_in_sync)
        return super().fit(x, y, batch_size=batch_size, **kwargs)

    def encode_apart(self, images, training):
        """``(h, state)``: the encoding, with batch norm's updates made in place (no state)."""
        return self.encoder(images, training=training), ()

    def commit(self, state):
        """Nothing: ``encode_apart`` updated the variables already."""
        del state

    def losses_and_gradients(self, batch):
        """``(losses, gradients)`` of one training step: ``compute_losses`` and the gradient in
        ``trainable_variables`` of this replica's share of the loss (loss-scaled if so)."""
        with tf.GradientTape() as tape:
            losses = self.compute_losses(batch, training=True)
            # Gradients are summed over replicas, so each replica's share is loss / N.
            _, num_replicas = replica_ops.replica_info()
            # Loss scaling (mixed_float16) keeps small gradients representable; identity else.
            scaled = self.optimizer.scale_loss(losses["loss"] / num_replicas)
        return losses, tape.gradient(scaled, self.trainable_variables)

    def train_step(self, data):
        losses, grads = self.losses_and_gradients(data)
        variables = self.trainable_variables
        learning_rate = self.optimizer.learning_rate  # the rate this step uses, read before apply
        self.optimizer.apply(grads, variables)
        return self.logged(losses, learning_rate)
