"""``InvCLRModel``: SimCLR's contrastive step plus InvCLR's gradient penalty, in ``train_step``.

The losses are ``keras.ops`` for every backend; ``train_step`` is the backend's
(``invcl_tf.tensorflow_plumbing.train_step``, ``invcl_tf.jax_plumbing.train_step``).
"""

import keras
from keras import ops

from invcl_tf import backends, replicas
from invcl_tf.losses import nt_xent_against
from invcl_tf.penalty import at_least_float32, gradient_penalty_with_state, rademacher


#: How the penalty averages over α′ (``InvCLRModel``'s ``gp_expectation``).
EXPECTATIONS = ("draws", "closed_form")


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
      gp_every_steps: k; the penalty runs on the steps whose global index (the batch's
        ``"step"``) is a multiple of k, with weight k·λ, the others are plain contrastive
        steps, in one compiled step (lazy regularisation). 1: every step.
      gp_expectation: ``"draws"``, the mean over the batch's ``alpha_extra`` draws α′ (the
        authors'), or ``"closed_form"``, its expectation under the transform's
        ``param_moments`` (no α′ drawn, no Monte Carlo noise).
    """

    def __init__(self, encoder, head, transform, temperature=0.5, gp_weight=0.0, gp_clip=1.0,
                 gp_normalize=True, gp_every_steps=1, gp_expectation="draws", **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.head = head
        self.transform = transform
        self.temperature = float(temperature)
        self.gp_weight = float(gp_weight)
        self.gp_clip = float(gp_clip)
        self.gp_normalize = bool(gp_normalize)
        self.gp_every_steps = int(gp_every_steps)
        if self.gp_every_steps < 1:
            raise ValueError(f"gp_every_steps must be at least 1, got {gp_every_steps}")
        if gp_expectation not in EXPECTATIONS:
            raise ValueError(f"gp_expectation must be one of {EXPECTATIONS}, got "
                             f"{gp_expectation!r}")
        self.gp_expectation = gp_expectation
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.contrastive_tracker = keras.metrics.Mean(name="contrastive_loss")
        self.penalty_tracker = keras.metrics.Mean(name="penalty")
        # With k > 1: the share of steps that carried the penalty ("penalty" averages those).
        self.carried_tracker = keras.metrics.Mean(name="penalty_steps")
        # Encoder and head arrive built, and this model has no weights of its own; saying so
        # spares Keras a symbolic build with the train batch under a distribution strategy.
        self.built = True

    @property
    def metrics(self):
        trackers = [self.loss_tracker, self.contrastive_tracker, self.penalty_tracker]
        return trackers + ([self.carried_tracker] if self.gp_every_steps > 1 else [])

    def call(self, images, training=False):
        return self.encoder(images, training=training)

    def represent(self, x, alpha, aux, training=False):
        """The representation of ``x`` transformed with parameters ``alpha``."""
        return self.encoder(self.transform.apply(x, alpha, aux), training=training)

    def compute_losses(self, batch, training=True):
        """Returns ``{"loss", "contrastive_loss", "penalty"}`` for one (per-replica) batch, and
        ``"carried"`` (1 or 0: this step ran the penalty) when ``gp_every_steps`` > 1."""
        replica_ops = backends.plumbing("replica_ops")
        losses = {}
        weight = self.gp_weight
        if self.gp_weight > 0:
            penalty, h1, state, carried = self._view1_with_penalty(batch, training)
            self.commit(state)
            if carried is not None:
                losses["carried"] = ops.cast(carried, penalty.dtype)
                weight = self.gp_weight * self.gp_every_steps
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
        loss = contrastive + weight * penalty
        return {"loss": loss, "contrastive_loss": contrastive, "penalty": penalty, **losses}

    def _view1_with_penalty(self, batch, training):
        """``(penalty, h1, state, carried)``: the penalty (0 on a step that skips it), view 1's
        representation, batch norm's state to commit, and whether the penalty ran (None when
        it runs on every step)."""
        replica_ops = backends.plumbing("replica_ops")
        local_batch = ops.shape(batch["alpha1"])[0]
        _, num_replicas = replica_ops.replica_info()
        dim = self.encoder.output_shape[-1]
        # Signs are drawn for the global batch and sliced, so N replicas draw what one would.
        signs = replica_ops.local_slice(
            rademacher(batch["sign_seed"][0], [local_batch * num_replicas, dim]), local_batch)

        def view1(a):
            images = self.transform.apply(batch["x1"], a, batch["aux1"])
            return self.encode_apart(images, training)

        if self.gp_expectation == "closed_form":
            extra, moments = None, self.transform.param_moments()
        else:
            extra, moments = batch["alpha_extra"], None

        def with_penalty():
            return gradient_penalty_with_state(view1, batch["alpha1"], extra, self.gp_clip,
                                               self.gp_normalize, signs, moments=moments)

        if self.gp_every_steps == 1:
            return (*with_penalty(), None)
        replicas.require_single_for_lazy_penalty(self.gp_every_steps, num_replicas)
        if "step" not in batch:
            raise ValueError("gp_every_steps > 1 needs each batch's global step index under "
                             "\"step\" (invcl_tf.data.pipeline's batches have it)")
        alpha = at_least_float32(batch["alpha1"])

        def without_penalty():
            h1, state = view1(alpha)
            return ops.zeros((), alpha.dtype), h1, state

        carried = ops.equal(ops.mod(batch["step"][0], self.gp_every_steps), 0)
        # One compiled step takes either branch: no retracing, no host decision.
        return (*ops.cond(carried, with_penalty, without_penalty), carried)

    def logged(self, losses, learning_rate):
        """Updates the loss trackers; returns the step's logs (with the learning rate)."""
        self.loss_tracker.update_state(losses["loss"])
        self.contrastive_tracker.update_state(losses["contrastive_loss"])
        if "carried" in losses:  # the penalty's mean over the steps that carried it
            self.penalty_tracker.update_state(losses["penalty"], sample_weight=losses["carried"])
            self.carried_tracker.update_state(losses["carried"])
        else:
            self.penalty_tracker.update_state(losses["penalty"])
        logs = {m.name: m.result() for m in self.metrics}
        logs["learning_rate"] = learning_rate
        return logs
