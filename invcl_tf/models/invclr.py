"""``InvCLRModel``: SimCLR's contrastive step plus InvCLR's gradient penalty, in ``train_step``."""

import keras
import tensorflow as tf

from invcl_tf import replicas
from invcl_tf.losses import nt_xent_against
from invcl_tf.penalty import gradient_penalty, rademacher


class InvCLRModel(keras.Model):
    """Encoder + projection head trained with NT-Xent + λ·gradient penalty.

    ``train_step`` takes a batch from ``invcl_tf.data.pipeline.train_dataset`` (inputs of two
    views, α¹, α², α′, per-example choices and a sign seed), applies the transformation inside
    the tape and differentiates through the penalty's own gradient (double backpropagation).
    ``call`` returns the encoder's representation of images.

    Args:
      encoder: maps images to the representation ``h [B, D]``.
      head: the projection head, ``h`` to the contrastive space.
      transform: a ``DifferentiableTransform``.
      temperature: NT-Xent τ.
      gp_weight: λ; 0 is plain SimCLR and skips the penalty's computation.
      gp_clip: U, the penalty's hard clip.
      gp_normalize: penalise the L2-normalised representation.
    """

    def __init__(self, encoder, head, transform, temperature=0.5, gp_weight=0.0, gp_clip=1.0,
                 gp_normalize=True, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.head = head
        self.transform = transform
        self.temperature = float(temperature)
        self.gp_weight = float(gp_weight)
        self.gp_clip = float(gp_clip)
        self.gp_normalize = bool(gp_normalize)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.contrastive_tracker = keras.metrics.Mean(name="contrastive_loss")
        self.penalty_tracker = keras.metrics.Mean(name="penalty")
        # Encoder and head arrive built, and this model has no weights of its own; saying so
        # spares Keras a symbolic build with the train batch under a distribution strategy.
        self.built = True

    @property
    def metrics(self):
        return [self.loss_tracker, self.contrastive_tracker, self.penalty_tracker]

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

    def call(self, images, training=False):
        return self.encoder(images, training=training)

    def represent(self, x, alpha, aux, training=False):
        """The representation of ``x`` transformed with parameters ``alpha``."""
        return self.encoder(self.transform.apply(x, alpha, aux), training=training)

    def compute_losses(self, batch, training=True):
        """Returns ``{"loss", "contrastive_loss", "penalty"}`` for one (per-replica) batch."""
        if self.gp_weight > 0:
            local_batch = tf.shape(batch["alpha1"])[0]
            _, num_replicas = replicas.replica_info()
            dim = self.encoder.output_shape[-1]
            # Signs are drawn for the global batch and sliced, so N replicas draw what one would.
            signs = replicas.local_slice(
                rademacher(batch["sign_seed"][0], [local_batch * num_replicas, dim]),
                local_batch)
            penalty, h1 = gradient_penalty(
                lambda a: self.represent(batch["x1"], a, batch["aux1"], training),
                batch["alpha1"], batch["alpha_extra"], self.gp_clip, self.gp_normalize, signs)
        else:
            h1 = self.represent(batch["x1"], batch["alpha1"], batch["aux1"], training)
            penalty = None
        # Separate calls per view, so batch-norm statistics are per view as in the authors' code.
        h2 = self.represent(batch["x2"], batch["alpha2"], batch["aux2"], training)
        z1 = self.head(h1, training=training)
        z2 = self.head(h2, training=training)
        rid, _ = replicas.replica_info()
        offset = tf.cast(rid, tf.int32) * tf.shape(z1)[0]
        contrastive = nt_xent_against(z1, z2, replicas.gather(z1), replicas.gather(z2), offset,
                                      self.temperature)
        if penalty is None:
            penalty = tf.zeros_like(contrastive)
        loss = contrastive + self.gp_weight * penalty
        return {"loss": loss, "contrastive_loss": contrastive, "penalty": penalty}

    def train_step(self, data):
        with tf.GradientTape() as tape:
            losses = self.compute_losses(data, training=True)
            # Gradients are summed over replicas, so each replica's share is loss / N.
            _, num_replicas = replicas.replica_info()
            # Loss scaling (mixed_float16) keeps small gradients representable; identity else.
            scaled = self.optimizer.scale_loss(losses["loss"] / num_replicas)
        variables = self.trainable_variables
        grads = tape.gradient(scaled, variables)
        learning_rate = self.optimizer.learning_rate  # the rate this step uses, read before apply
        self.optimizer.apply(grads, variables)
        self.loss_tracker.update_state(losses["loss"])
        self.contrastive_tracker.update_state(losses["contrastive_loss"])
        self.penalty_tracker.update_state(losses["penalty"])
        logs = {m.name: m.result() for m in self.metrics}
        logs["learning_rate"] = learning_rate
        return logs
