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
