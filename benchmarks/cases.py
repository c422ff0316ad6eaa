"""What the benchmarks share: the models, the step on a fixed batch, an epoch timer."""

import time

import keras
import tensorflow as tf

from configs import spirograph
from invcl_tf import configuration, distribute, pretraining
from invcl_tf.data import draws
from invcl_tf.transforms import spirograph as spiro

#: name -> (arch, width_multiplier, batch_size)
CASES = {"quarter": ("resnet18", 0.25, 256), "full": ("resnet18", 1.0, 64),
         "tiny": ("resnet_tiny", 1.0, 64)}


def config_for(case, precision, gp_weight, jit, every_steps=1):
    """The paper's Spirograph config at the case's model and batch (the penalty every
    ``every_steps`` steps)."""
    arch, width, batch = CASES[case]
    config = spirograph.get_config()
    config.model.arch, config.model.width_multiplier = arch, width
    config.train.batch_size = batch
    config.train.precision = precision
    config.train.jit_compile = jit
    config.gp.weight = gp_weight
    config.gp.every_steps = every_steps
    return config


def fixed_batch_step(case, precision, gp_weight, jit):
    """``(step, batch)``: the compiled train step of a fresh model and one drawn batch."""
    distribute.set_precision(precision)
    config = config_for(case, precision, gp_weight, jit)
    targets = spiro.sample_targets([0, 0], config.train.batch_size)
    return _compiled_step(config, spiro.SpirographTransform(), targets)


def _compiled_step(config, transform, inputs):
    """A fresh model's compiled train step and one batch of views drawn from ``inputs``."""
    model = pretraining.build_model(config, transform, steps_per_epoch=100)
    batch = draws.draw_views(transform, inputs, draws.fold(0, 1),
                             configuration.extra_draws(config))
    return tf.function(model.train_step, jit_compile=config.train.jit_compile), batch


def image_fixed_batch_step(covers, jit=False):
    """``(step, batch)``: the penalty step of CIFAR-10's config (ResNet-18 at 1/4 width, batch
    256) on random 32×32 images, the penalty covering ``covers`` (``gp.covers``)."""
    from configs import cifar10
    from invcl_tf.data import sources

    distribute.set_precision("float32")
    config = cifar10.get_config()
    config.model.arch, config.model.width_multiplier = "resnet18", 0.25
    config.train.batch_size = 256
    config.train.jit_compile = jit
    config.gp.weight = 0.01
    config.gp.covers = covers
    transform, shape = sources.transform_for(config)
    images = tf.cast(tf.random.stateless_uniform([256, *shape], [0, 0], 0, 256, tf.int32),
                     tf.uint8)
    return _compiled_step(config, transform, images)


class EpochTimer(keras.callbacks.Callback):
    """Records every epoch's wall time in ``seconds``."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)
