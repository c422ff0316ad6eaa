"""Batch norm on JAX: Keras's layer, differentiated twice by autodiff for the penalty (XLA
fuses the elementwise chain that TensorFlow's closed-form layer works around)."""

import keras
from keras import ops

from invcl_tf.numerics import wide_dtype


class BatchNorm(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization``, computing in float32, or float64 for float64
    inputs (Keras's JAX layer computes those in float32), and accepting TensorFlow's
    ``synchronized`` flag: under ``keras.distribution.DataParallel`` every array is the
    global batch, so batch statistics are the global batch's whatever the flag says.
    """

    def __init__(self, synchronized=False, **kwargs):
        del synchronized
        super().__init__(**kwargs)

    def call(self, inputs, training=None, mask=None):
        if mask is not None or self.renorm:
            return super().call(inputs, training=training, mask=mask)
        x = ops.cast(inputs, wide_dtype(inputs))
        if training and self.trainable:
            mean, variance = ops.moments(x, axes=self._reduction_axes)
            for moving, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
                batch = ops.cast(batch, moving.dtype)
                moving.assign(moving * self.momentum + batch * (1.0 - self.momentum))
        else:
            mean, variance = self.moving_mean, self.moving_variance
        cast = lambda v: None if v is None else ops.cast(v, x.dtype)  # noqa: E731
        y = ops.batch_normalization(x, cast(mean), cast(variance), axis=self.axis,
                                    offset=cast(self.beta), scale=cast(self.gamma),
                                    epsilon=self.epsilon)
        return ops.cast(y, self.compute_dtype)
