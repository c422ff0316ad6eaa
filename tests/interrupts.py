"""Callbacks that stand in for a crash at a chosen point of training."""

import keras


class StopAtStep(keras.callbacks.Callback):
    """Raises ``KeyboardInterrupt`` once the optimizer has taken ``step`` steps."""

    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations) == self.step:
            raise KeyboardInterrupt


class StopAfterEpoch(keras.callbacks.Callback):
    """Raises ``KeyboardInterrupt`` at the end of epoch ``epochs`` (1-based)."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs:
            raise KeyboardInterrupt
