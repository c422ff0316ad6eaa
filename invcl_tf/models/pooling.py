"""The encoder's global average pooling, exact in float64 on every backend."""

import keras

from invcl_tf import numerics


@keras.saving.register_keras_serializable(package="invcl_tf")
class GlobalAveragePooling(keras.layers.GlobalAveragePooling2D):
    """``keras.layers.GlobalAveragePooling2D`` through ``numerics.mean``: the same op on
    TensorFlow, while Keras's JAX backend would average float64 in float32 (which the
    cross-backend float64 checks cannot use)."""

    def call(self, inputs):
        axes = [1, 2] if self.data_format == "channels_last" else [2, 3]
        return numerics.mean(inputs, axis=axes, keepdims=self.keepdims)
