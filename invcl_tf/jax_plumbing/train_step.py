"""``InvCLRModel``'s training on JAX: a stateless ``train_step`` (Keras's JAX trainer jits
it) whose loss is differentiated by ``jax.value_and_grad``; the penalty's ``jax.grad`` in α
runs inside it. Variables are read and assigned through ``keras.StatelessScope``s, so the
shared ``compute_losses`` runs unchanged."""

import jax
import keras

from invcl_tf.jax_plumbing.input_pipeline import TrainBatches


def _scope(variables, values):
    return keras.StatelessScope(state_mapping=list(zip(variables, values)))


def _updated(scope, variables, before):
    """The values ``variables`` hold at the end of ``scope`` (``before`` if unassigned)."""
    values = [scope.get_current_value(v) for v in variables]
    return [old if new is None else new for old, new in zip(before, values)]


class TrainStep:
    """The JAX half of ``InvCLRModel``: ``train_step(state, data)`` and ``fit``."""

    def fit(self, x=None, y=None, **kwargs):
        """``keras.Model.fit``; ``TrainBatches`` are read in their order (each epoch's
        permutation is in them already: Keras's shuffle would reorder steps, and resumes)."""
        if isinstance(x, TrainBatches):
            kwargs["shuffle"] = False
        return super().fit(x, y, **kwargs)

    def encode_apart(self, images, training):
        """``(h, state)``: the encoding and batch norm's new moving statistics, which must
        leave the penalty's inner ``jax.grad`` as its output (assigned inside, they would be
        its tracers); ``commit`` assigns them."""
        variables = self.encoder.variables
        with _scope(variables, [v.value for v in variables]) as scope:
            h = self.encoder(images, training=training)
        state = self.encoder.non_trainable_variables
        return h, _updated(scope, state, [v.value for v in state])

    def commit(self, state):
        """Assigns the state ``encode_apart`` returned."""
        for variable, value in zip(self.encoder.non_trainable_variables, state):
            variable.assign(value)

    def losses_and_gradients(self, trainable, non_trainable, optimizer_values, batch):
        """``(losses, non_trainable, gradients)`` of one training step from the variables'
        values: ``compute_losses``, the new non-trainable values (batch norm's statistics) and
        the gradient of the (loss-scaled, if so) loss in the trainable values."""

        def loss_fn(trainable, non_trainable):
            with _scope(self.trainable_variables + self.non_trainable_variables,
                        list(trainable) + list(non_trainable)) as scope:
                losses = self.compute_losses(batch, training=True)
            with _scope(self.optimizer.variables, optimizer_values):
                scaled = self.optimizer.scale_loss(losses["loss"])
            return scaled, (losses, _updated(scope, self.non_trainable_variables, non_trainable))

        (_, (losses, non_trainable)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            trainable, non_trainable)
        return losses, non_trainable, grads

    def train_step(self, state, data):
        trainable, non_trainable, optimizer_values, metric_values = state
        batch, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        losses, non_trainable, grads = self.losses_and_gradients(
            trainable, non_trainable, optimizer_values, batch)
        with _scope(self.optimizer.variables, optimizer_values):
            # The rate this step uses (a constant rate is a variable: read its value).
            learning_rate = keras.ops.convert_to_tensor(self.optimizer.learning_rate)
        trainable, optimizer_values = self.optimizer.stateless_apply(
            optimizer_values, grads, trainable)
        with _scope(self.metrics_variables, metric_values) as scope:
            logs = self.logged(losses, learning_rate)
        metric_values = _updated(scope, self.metrics_variables, metric_values)
        return logs, (trainable, non_trainable, optimizer_values, metric_values)
