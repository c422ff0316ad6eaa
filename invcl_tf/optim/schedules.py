"""Learning-rate schedule of the InvCLR authors: per-epoch linear warm-up, then cosine decay."""

import math

import keras
from keras import ops


def peak_learning_rate(base_lr, batch_size):
    """Linear batch-size scaling of the learning rate: ``base_lr * batch_size / 256``."""
    return base_lr * batch_size / 256


@keras.saving.register_keras_serializable(package="invcl_tf")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """``lr(e) = min(L (1 + cos(π e / T)) / 2, L (1 + e) / W)`` with epoch ``e = step // S``.

    Args:
        peak_lr: L, the learning rate reached at the end of warm-up.
        epochs: T, the total number of training epochs.
        steps_per_epoch: S, optimiser steps per epoch; the rate is constant within an epoch.
        warmup_epochs: W, the length of the linear warm-up in epochs.
    """

    def __init__(self, peak_lr, epochs, steps_per_epoch, warmup_epochs=10):
        self.peak_lr = float(peak_lr)
        self.epochs = int(epochs)
        self.steps_per_epoch = int(steps_per_epoch)
        self.warmup_epochs = int(warmup_epochs)

    def __call__(self, step):
        # Integer division: a float32 step / S can round up to the next epoch for large steps.
        epoch = ops.floor_divide(ops.cast(step, "int64"), self.steps_per_epoch)
        # float64 because 1 + cos(π e / T) cancels badly in float32 over the last epochs.
        epoch = ops.cast(epoch, "float64")
        cosine = self.peak_lr * (1.0 + ops.cos(math.pi * epoch / self.epochs)) / 2.0
        warmup = self.peak_lr * (1.0 + epoch) / self.warmup_epochs
        return ops.cast(ops.minimum(cosine, warmup), "float32")

    def get_config(self):
        """Returns the constructor arguments."""
        return {
            "peak_lr": self.peak_lr,
            "epochs": self.epochs,
            "steps_per_epoch": self.steps_per_epoch,
            "warmup_epochs": self.warmup_epochs,
        }
