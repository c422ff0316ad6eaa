"""Pretraining: builds the model from a config and runs ``fit`` with resumable checkpoints."""

import math
import os
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

from invcl_tf import configuration, custom_loop, distribute, errors, eval_protocol
from invcl_tf import workdir as workdir_lib
from invcl_tf.data import pipeline, sources
from invcl_tf.models.head import build_projection_head
from invcl_tf.models.invclr import InvCLRModel
from invcl_tf.models.resnet import build_encoder
from invcl_tf.optim.lars import LARS
from invcl_tf.optim.schedules import WarmupCosine, peak_learning_rate


class NonFiniteLossError(errors.UserError, RuntimeError):
    """Training produced a non-finite loss; the last good checkpoint was kept."""


def build_model(config, transform, steps_per_epoch):
    """An ``InvCLRModel`` compiled with LARS and the warm-up + cosine schedule of SPEC §4."""
    encoder = build_encoder(config.model.arch, config.model.width_multiplier,
                            sync_bn=config.model.sync_bn)
    head = build_projection_head(encoder.output_shape[-1], sync_bn=config.model.sync_bn)
    model = InvCLRModel(encoder, head, transform, temperature=config.train.temperature,
                        gp_weight=config.gp.weight, gp_clip=config.gp.clip,
                        gp_normalize=config.gp.normalize)
    schedule = WarmupCosine(peak_learning_rate(config.train.base_lr, config.train.batch_size),
                            config.train.epochs, steps_per_epoch, config.train.warmup_epochs)
    optimizer = LARS(learning_rate=schedule, momentum=config.train.momentum,
                     lars_weight_decay=config.train.weight_decay,
                     trust_coefficient=config.train.trust_coefficient)
    model.compile(optimizer=optimizer, jit_compile=config.train.jit_compile)
    optimizer.build(model.trainable_variables)
    return model


class Checkpointer(keras.callbacks.Callback):
    """Saves model, optimizer and epoch after every epoch; never saves non-finite weights.

    ``tf.train.CheckpointManager`` writes the data files before it atomically rewrites its
    index, so an interrupted save leaves the previous checkpoint in force. In a multi-worker
    run every worker must save (saving may run collectives), but only the chief keeps its
    checkpoints: the others write to a temporary directory removed at the end; all restore
    from the chief's ``directory``.
    """

    def __init__(self, model, directory, chief=True):
        super().__init__()
        self.directory = directory
        self.chief = chief
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.checkpoint = tf.train.Checkpoint(encoder=model.encoder, head=model.head,
                                              optimizer=model.optimizer, epoch=self.epoch)
        write_dir = directory if chief else tempfile.mkdtemp(prefix="invcl-worker-")
        self.manager = tf.train.CheckpointManager(self.checkpoint, write_dir, max_to_keep=2)

    def restore(self):
        """Restores the latest checkpoint, if any; returns the epoch to start from."""
        latest = tf.train.latest_checkpoint(self.directory)
        if latest:
            self.checkpoint.restore(latest).assert_consumed()
        return int(self.epoch.numpy())

    def on_train_end(self, logs=None):
        if not self.chief:
            shutil.rmtree(self.manager.directory, ignore_errors=True)

    def on_epoch_end(self, epoch, logs=None):
        weights = self.model.weights + self.model.optimizer.variables
        if not all(np.all(np.isfinite(keras.ops.convert_to_numpy(w))) for w in weights):
            raise NonFiniteLossError(
                f"weights became non-finite in epoch {epoch + 1}; the last good checkpoint "
                f"in {self.manager.directory} is kept")
        self.epoch.assign(epoch + 1)
        self.manager.save(checkpoint_number=epoch + 1)


class StopOnNonFinite(keras.callbacks.Callback):
    """Stops at the first non-finite loss and says at which step."""

    def __init__(self, steps_per_epoch, checkpoint_dir=None):
        super().__init__()
        self.steps_per_epoch = steps_per_epoch
        self.checkpoint_dir = checkpoint_dir
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            step = self.epoch * self.steps_per_epoch + batch + 1
            kept = (f"; the last good checkpoint in {self.checkpoint_dir} is kept"
                    if self.checkpoint_dir else "")
            raise NonFiniteLossError(
                f"the loss became non-finite ({float(loss)}) at step {step} (epoch "
                f"{self.epoch + 1}){kept} (lower --config.train.base_lr or --config.gp.weight "
                "and start a new workdir)")


class ProbeMonitor(keras.callbacks.Callback):
    """Every ``every`` epochs adds a quick probe MSE and conditional variance to the logs.

    Placed before the TensorBoard callback, its values reach TensorBoard and the progress bar.
    """

    def __init__(self, data, config):
        super().__init__()
        self.data = data
        self.config = config

    def on_epoch_end(self, epoch, logs=None):
        every = self.config.eval.every_epochs
        if logs is None or not every or (epoch + 1) % every:
            return
        found = eval_protocol.quick_probe(self.model.encoder, self.data, self.config)
        logs.update({f"monitor_{name}": value for name, value in found.items()})


def fit(model, config, train_x, transform, start_epoch=0, epochs=None, callbacks=(),
        verbose=1, checkpoint_dir=None):
    """Runs ``model``'s training on ``train_x`` for epochs ``start_epoch .. epochs-1``.

    The one training loop of the project (``train`` and the tuner's trials both use it): the
    stateless input pipeline of ``invcl_tf.data.pipeline``, a stop at the first non-finite
    loss (``NonFiniteLossError``), and Keras ``fit``, or the custom loop under
    ``MultiWorkerMirroredStrategy``. ``epochs`` defaults to ``config.train.epochs``.
    """
    epochs = config.train.epochs if epochs is None else int(epochs)
    strategy = model.distribute_strategy
    configuration.check_replicas(config, strategy.num_replicas_in_sync)  # custom loop too
    spe = pipeline.steps_per_epoch(len(train_x), config.train.batch_size)
    num_extra = config.gp.num_extra if config.gp.weight > 0 else 0

    def make_dataset():
        return pipeline.train_dataset(train_x, transform, config.train.batch_size, num_extra,
                                      config.seed, start_epoch, epochs)

    callbacks = [StopOnNonFinite(spe, checkpoint_dir), *callbacks]
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return custom_loop.fit(model, strategy, make_dataset, epochs, start_epoch, spe,
                               callbacks, verbose)
    return model.fit(make_dataset(), epochs=epochs, initial_epoch=start_epoch,
                     steps_per_epoch=spe, callbacks=callbacks, verbose=verbose, shuffle=False)


def train(config, workdir, verbose=1, extra_callbacks=()):
    """Pretrains per ``config`` in ``workdir``, resuming from its last checkpoint.

    Writes ``config.json``, checkpoints after each epoch, TensorBoard logs and the final
    encoder and head (``encoder.keras``, ``head.keras``). Returns the trained ``InvCLRModel``.
    """
    configuration.validate(config)
    strategy = distribute.strategy_for(config.distribute)  # multi-worker: before any TF op
    configuration.check_replicas(config, strategy.num_replicas_in_sync)
    chief = custom_loop.is_chief(strategy)
    data = sources.load(config)  # before the workdir: missing data must leave nothing behind
    if chief:
        workdir_lib.prepare(workdir, config)
    keras.utils.set_random_seed(config.seed)
    spe = pipeline.steps_per_epoch(len(data.train_x), config.train.batch_size)
    distribute.set_precision(config.train.precision)
    with strategy.scope():
        model = build_model(config, data.transform, spe)
    ckpt_dir = os.path.join(workdir, workdir_lib.CHECKPOINT_DIR)
    checkpointer = Checkpointer(model, ckpt_dir, chief)
    start_epoch = checkpointer.restore()
    if start_epoch < config.train.epochs:
        callbacks = [checkpointer, *extra_callbacks]
        if chief:
            callbacks += [ProbeMonitor(data, config), keras.callbacks.TensorBoard(
                os.path.join(workdir, workdir_lib.TENSORBOARD_DIR))]
        fit(model, config, data.train_x, data.transform, start_epoch, callbacks=callbacks,
            verbose=verbose, checkpoint_dir=ckpt_dir)
    if chief:
        workdir_lib.save_model(model.encoder, os.path.join(workdir, workdir_lib.ENCODER_FILE))
        workdir_lib.save_model(model.head, os.path.join(workdir, workdir_lib.HEAD_FILE))
    return model
