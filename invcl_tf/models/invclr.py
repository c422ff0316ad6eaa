"""``InvCLRModel``: SimCLR's contrastive step plus InvCLR's gradient penalty, in ``train_step``.

The losses are ``keras.ops`` for every backend; ``train_step`` is the backend's
(``invcl_tf.tensorflow_plumbing.train_step``, ``invcl_tf.jax_plumbing.train_step``).
"""

import keras
from keras import ops

from invcl_tf import backends
from invcl_tf.losses import nt_xent_against
from invcl_tf.penalty import gradient_penalty_with_state, rademacher


class InvCLRModel(backends.plumbing("train_step").TrainStep, keras.Model):
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

    def call(self, images, training=False):
        return self.encoder(images, training=training)

    def represent(self, x, alpha, aux, training=False):
        """The representation of ``x`` transformed with parameters ``alpha``."""
        return self.encoder(self.transform.apply(x, alpha, aux), training=training)

    def compute_losses(self, batch, training=True):
        """Returns ``{"loss", "contrastive_loss", "penalty"}`` for one (per-replica) batch."""
        replica_ops = backends.plumbing("replica_ops")
        if self.gp_weight > 0:
            local_batch = ops.shape(batch["alpha1"])[0]
            _, num_replicas = replica_ops.replica_info()
            dim = self.encoder.output_shape[-1]
            # Signs are drawn for the global batch and sliced, so N replicas draw what one would.
            signs = replica_ops.local_slice(
                rademacher(batch["sign_seed"][0], [local_batch * num_replicas, dim]),
                local_batch)

            def view1(a):
                images = self.transform.apply(batch["x1"], a, batch["aux1"])
                return self.encode_apart(images, training)

            penalty, h1, state = gradient_penalty_with_state(
                view1, batch["alpha1"], batch["alpha_extra"], self.gp_clip, self.gp_normalize,
                signs)
            self.commit(state)
        else:
            h1 = self.represent(batch["x1"], batch["alpha1"], batch["aux1"], training)
            penalty = None
        # Separate calls per view, so batch-norm statistics are per view as in the authors' code.
        h2 = self.represent(batch["x2"], batch["alpha2"], batch["aux2"], training)
        z1 = self.head(h1, training=training)
        z2 = self.head(h2, training=training)
        rid, _ = replica_ops.replica_info()
        offset = ops.cast(rid, "int32") * ops.shape(z1)[0]
        contrastive = nt_xent_against(z1, z2, replica_ops.gather(z1), replica_ops.gather(z2),
                                      offset, self.temperature)
        if penalty is None:
            penalty = ops.zeros_like(contrastive)
        loss = contrastive + self.gp_weight * penalty
        return {"loss": loss, "contrastive_loss": contrastive, "penalty": penalty}

    def logged(self, losses, learning_rate):
        """Updates the loss trackers; returns the step's logs (with the learning rate)."""
        self.loss_tracker.update_state(losses["loss"])
        self.contrastive_tracker.update_state(losses["contrastive_loss"])
        self.penalty_tracker.update_state(losses["penalty"])
        logs = {m.name: m.result() for m in self.metrics}
        logs["learning_rate"] = learning_rate
        return logs
