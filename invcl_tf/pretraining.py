"""Pretraining: builds the model from a config and runs ``fit`` with resumable checkpoints."""

import json
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
from invcl_tf.models.rebuild import rebuilt
from invcl_tf.models.resnet import build_encoder
from invcl_tf.optim.lars import LARS
from invcl_tf.optim.schedules import WarmupCosine, peak_learning_rate


class NonFiniteLossError(errors.UserError, RuntimeError):
    """Training produced a non-finite loss; the last good checkpoint, if any, was kept."""


_STEP_KEY = "step/.ATTRIBUTES/VARIABLE_VALUE"  # Checkpointer's step in the checkpoint file


def build_model(config, transform, steps_per_epoch):
    """An ``InvCLRModel`` compiled with LARS and the warm-up + cosine schedule of SPEC §4."""
    size = transform.image_size
    encoder = build_encoder(config.model.arch, config.model.width_multiplier, (size, size, 3),
                            sync_bn=config.model.sync_bn, stem=config.model.stem)
    head = build_projection_head(encoder.output_shape[-1], sync_bn=config.model.sync_bn)
    model = InvCLRModel(encoder, head, transform, temperature=config.train.temperature,
                        gp_weight=config.gp.weight, gp_clip=config.gp.clip,
                        gp_normalize=config.gp.normalize,
                        gp_every_steps=config.gp.every_steps,
                        gp_expectation=config.gp.expectation)
    schedule = WarmupCosine(peak_learning_rate(config.train.base_lr, config.train.batch_size),
                            config.train.epochs, steps_per_epoch, config.train.warmup_epochs)
    optimizer = LARS(learning_rate=schedule, momentum=config.train.momentum,
                     lars_weight_decay=config.train.weight_decay,
                     trust_coefficient=config.train.trust_coefficient)
    model.compile(optimizer=optimizer, jit_compile=config.train.jit_compile,
                  steps_per_execution=config.train.steps_per_execution)
    # The optimizer compile left: under mixed_float16 a LossScaleOptimizer around LARS, whose
    # own variables (loss scale, step counter) a checkpoint holds and a resume must find.
    model.optimizer.build(model.trainable_variables)
    return model


def steps_done(model):
    """The optimizer's update count, also for a distributed (mirrored) variable. Under loss
    scaling it lags the steps taken (a skipped step updates nothing): the checkpoints count
    steps themselves."""
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def checkpointed_step(directory):
    """The steps taken by the latest checkpoint in ``directory`` (0 when there is none), read
    from the file alone: no model needs building to learn where a resume starts."""
    latest = tf.train.latest_checkpoint(directory)
    return int(tf.train.load_variable(latest, _STEP_KEY)) if latest else 0


class Checkpointer(keras.callbacks.Callback):
    """Saves model, optimizer and step after every epoch, and every ``every_steps`` steps when
    that is > 0; never saves non-finite weights. Checkpoints are numbered by the global steps
    taken, counted on the host from the restored step (the optimizer's count misses the steps
    a loss scaler skips).

    ``tf.train.CheckpointManager`` writes the data files before it atomically rewrites its
    index, so an interrupted save leaves the previous checkpoint in force. In a multi-worker
    run every worker must save (saving may run collectives), but only the chief keeps its
    checkpoints: the others write to a temporary directory removed at the end; all restore
    from the chief's ``directory``.
    """

    def __init__(self, model, directory, chief=True, every_steps=0):
        super().__init__()
        self.directory = directory
        self.chief = chief
        self.every_steps = int(every_steps)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.checkpoint = tf.train.Checkpoint(encoder=model.encoder, head=model.head,
                                              optimizer=model.optimizer, step=self.step)
        write_dir = directory if chief else tempfile.mkdtemp(prefix="invcl-worker-")
        self.manager = tf.train.CheckpointManager(self.checkpoint, write_dir, max_to_keep=2)
        self._saved_at = None

    def restore(self):
        """Restores the latest checkpoint, if any; returns the number of steps it had done."""
        latest = tf.train.latest_checkpoint(self.directory)
        if latest:
            self.checkpoint.restore(latest).assert_consumed()
        return int(self.step.numpy())

    def on_train_end(self, logs=None):
        if not self.chief:
            shutil.rmtree(self.manager.directory, ignore_errors=True)

    def on_train_begin(self, logs=None):
        # Counted on the host from the last restore or save (each part of a resumed run
        # starts at one): reading a device counter every batch would wait for each step to
        # finish (on a GPU, a stall between steps).
        self._step = int(self.step.numpy())

    def on_train_batch_end(self, batch, logs=None):
        # A "batch" is one call of train.steps_per_execution steps: save when a call crossed
        # a multiple of every_steps.
        before = self._step
        self._step += self.model.steps_per_execution
        if self.every_steps and self._step // self.every_steps > before // self.every_steps:
            self._save(self._step, f"step {self._step}")

    def on_epoch_end(self, epoch, logs=None):
        if self._step != self._saved_at:
            self._save(self._step, f"epoch {epoch + 1}")

    def _save(self, step, where):
        weights = self.model.weights + self.model.optimizer.variables
        if not all(np.all(np.isfinite(keras.ops.convert_to_numpy(w))) for w in weights):
            raise NonFiniteLossError(
                f"weights became non-finite by {where}; {kept_checkpoint(self.directory)}")
        self.step.assign(step)
        self.manager.save(checkpoint_number=step)
        self._saved_at = step


def kept_checkpoint(directory):
    """What a divergence leaves behind in ``directory``, in words."""
    latest = directory and tf.train.latest_checkpoint(directory)
    if not latest:
        return "no checkpoint had been written yet"
    return f"the last good checkpoint ({os.path.basename(latest)} in {directory}) is kept"


class StopOnNonFinite(keras.callbacks.Callback):
    """Stops at the first non-finite loss and says at which step."""

    def __init__(self, steps_per_epoch, checkpoint_dir=None):
        super().__init__()
        self.steps_per_epoch = steps_per_epoch
        self.checkpoint_dir = checkpoint_dir

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            step = steps_done(self.model)
            every = self.model.steps_per_execution
            when = f"at step {step}" if every == 1 else f"by step {step} (read every {every})"
            kept = f"; {kept_checkpoint(self.checkpoint_dir)}" if self.checkpoint_dir else ""
            raise NonFiniteLossError(
                f"the loss became non-finite ({float(loss)}) {when} (epoch "
                f"{(step - 1) // self.steps_per_epoch + 1}){kept} (lower "
                "--config.train.base_lr or --config.gp.weight and start a new workdir)")


class ProbeMonitor(keras.callbacks.Callback):
    """Every ``every`` epochs adds a quick probe MSE and conditional variance to the logs.

    Placed before the TensorBoard callback, its values reach TensorBoard and the progress bar;
    with ``path`` they are also appended to a JSON record (``{"epoch": [...], name: [...]}``)
    that survives a resumed run.
    """

    def __init__(self, data, config, path=None):
        super().__init__()
        self.config = config
        self.path = path
        self.probe = eval_protocol.QuickProbe(data, config)

    def on_epoch_end(self, epoch, logs=None):
        every = self.config.eval.every_epochs
        if logs is None or not every or (epoch + 1) % every:
            return
        found = {f"monitor_{name}": value
                 for name, value in self.probe(self.model.encoder).items()}
        logs.update(found)
        if self.path:
            record = workdir_lib.read_json(self.path) or {"epoch": []}
            if epoch + 1 in record["epoch"]:  # re-run after a resume: keep one entry
                return
            record["epoch"].append(epoch + 1)
            for name, value in found.items():
                record.setdefault(name, []).append(float(value))
            workdir_lib.atomic_write_text(self.path, json.dumps(record, indent=1))


def fit(model, config, train_x, transform, start_epoch=0, epochs=None, callbacks=(),
        verbose=1, checkpoint_dir=None, start_step=0):
    """Runs ``model``'s training on ``train_x`` from step ``start_step`` of ``start_epoch`` to
    the end of epoch ``epochs - 1``.

    The one training loop of the project (``train`` and the tuner's trials both use it): the
    stateless input pipeline of ``invcl_tf.data.pipeline``, a stop at the first non-finite
    loss (``NonFiniteLossError``), and Keras ``fit``, or the custom loop under
    ``MultiWorkerMirroredStrategy``. ``epochs`` defaults to ``config.train.epochs``. A run
    resumed mid-epoch first finishes that epoch, so epoch-end callbacks see whole epochs.
    """
    epochs = config.train.epochs if epochs is None else int(epochs)
    strategy = model.distribute_strategy
    configuration.check_replicas(config, strategy.num_replicas_in_sync)  # custom loop too
    spe = pipeline.steps_per_epoch(len(train_x), config.train.batch_size)
    configuration.check_steps_per_execution(config, spe, spe - start_step)
    num_extra = configuration.extra_draws(config)
    callbacks = [StopOnNonFinite(spe, checkpoint_dir), *callbacks]

    def run(first_epoch, last_epoch, first_step):
        def make_dataset(rows=None):
            return pipeline.train_dataset(train_x, transform, config.train.batch_size, num_extra,
                                          config.seed, first_epoch, last_epoch, first_step, rows)

        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return custom_loop.fit(model, strategy, make_dataset, last_epoch, first_epoch,
                                   spe - first_step, callbacks, verbose, config.train.batch_size)
        return model.fit(make_dataset(), epochs=last_epoch, initial_epoch=first_epoch,
                         steps_per_epoch=spe - first_step, callbacks=callbacks,
                         verbose=verbose, shuffle=False)

    history = None
    if start_step:
        history = run(start_epoch, start_epoch + 1, start_step)
        start_epoch += 1
    if start_epoch < epochs and not model.stop_training:
        history = run(start_epoch, epochs, 0)
    return history


def train(config, workdir, verbose=1, extra_callbacks=()):
    """Pretrains per ``config`` in ``workdir``, resuming from its last checkpoint.

    Writes ``config.json``, checkpoints after each epoch (and every
    ``train.checkpoint_every_steps`` steps), TensorBoard logs and the final encoder and head
    (``encoder.keras``, ``head.keras``). Returns the trained ``InvCLRModel``.
    """
    configuration.validate(config)
    strategy = distribute.strategy_for(config.distribute)  # multi-worker: before any TF op
    configuration.check_replicas(config, strategy.num_replicas_in_sync)
    chief = custom_loop.is_chief(strategy)
    data = sources.load(config)  # before the workdir: missing data must leave nothing behind
    spe = pipeline.steps_per_epoch(len(data.train_x), config.train.batch_size)
    configuration.check_steps_per_execution(config, spe)
    ckpt_dir = os.path.join(workdir, workdir_lib.CHECKPOINT_DIR)
    # Every check of a resume before anything is written: a refused one changes nothing.
    if chief:
        workdir_lib.check_resume(workdir, config)
    done = checkpointed_step(ckpt_dir)
    start_epoch, start_step = divmod(done, spe)
    if start_step:
        configuration.check_steps_per_execution(config, spe, spe - start_step)
    if chief:
        workdir_lib.prepare(workdir, config)
        if done:
            print(f"resuming {workdir} after {done} steps: epoch {start_epoch + 1} of "
                  f"{config.train.epochs}, step {start_step} of {spe}"
                  if start_epoch < config.train.epochs else
                  f"{workdir} finished training ({config.train.epochs} epochs) already")
    keras.utils.set_random_seed(config.seed)
    distribute.set_precision(config.train.precision)
    with strategy.scope():
        model = build_model(config, data.transform, spe)
    checkpointer = Checkpointer(model, ckpt_dir, chief, config.train.checkpoint_every_steps)
    checkpointer.restore()
    if start_epoch < config.train.epochs:
        callbacks = [checkpointer, *extra_callbacks]
        if chief:
            callbacks += [ProbeMonitor(data, config,
                                       os.path.join(workdir, workdir_lib.MONITOR_FILE)),
                          keras.callbacks.TensorBoard(
                os.path.join(workdir, workdir_lib.TENSORBOARD_DIR))]
        fit(model, config, data.train_x, data.transform, start_epoch, callbacks=callbacks,
            verbose=verbose, checkpoint_dir=ckpt_dir, start_step=start_step)
    if chief:
        # Plain Keras layers in the files: they load without this package.
        for part, filename in ((model.encoder, workdir_lib.ENCODER_FILE),
                               (model.head, workdir_lib.HEAD_FILE)):
            workdir_lib.save_model(rebuilt(part, plain=True),
                                   os.path.join(workdir, filename))
    return model
