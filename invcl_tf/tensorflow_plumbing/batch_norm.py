"""Batch norm on TensorFlow, its training-mode gradient written out: double backpropagation
is cheap.

Differentiated by autodiff, Keras's batch norm (moments from sums, then ``x·a + b``) leaves a
long chain of broadcasts, reductions and per-channel products in the backward graph, and the
penalty's double backpropagation differentiates that chain once more: on a CPU, the
elementwise ops of batch norm took more of the penalty step than the extra convolutions did
(benchmarks/NOTES.md). Here the input gradient is the closed form

    dx = γ·s·(dy − mean(dy) − x̂·mean(dy·x̂)),   s = 1/sqrt(var + ε),

in five full-size ops, and everything it uses (x, the batch mean and s, γ, dy) is an input of
the op or the upstream gradient, never a forward intermediate, so differentiating it again
(the penalty's training gradient) is exact: the batch statistics stay functions of ``x`` on
the outer tape.
"""

import keras
import tensorflow as tf


def _all_sum(value, synchronized):
    if not synchronized:
        return value
    return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, value)


def batch_moments(x, axes, synchronized):
    """``(mean, variance, count)`` over ``axes`` (keepdims), summed over replicas if
    ``synchronized``; the variance is E[x²] − E[x]², as Keras's synchronised layer takes it."""
    count = tf.cast(tf.reduce_prod(tf.gather(tf.shape(x), axes)), x.dtype)
    count = _all_sum(count, synchronized)
    mean = _all_sum(tf.reduce_sum(x, axes, keepdims=True), synchronized) / count
    squares = _all_sum(tf.reduce_sum(tf.square(x), axes, keepdims=True), synchronized) / count
    return mean, tf.maximum(squares - tf.square(mean), 0.0), count


def normalize(x, mean, inv_std, count, gamma, beta, axes, synchronized):
    """``γ·(x − mean)·inv_std + β`` for batch statistics of ``x``, with the closed-form gradient.

    ``mean`` and ``inv_std`` must be the batch statistics of ``x`` (``batch_moments``; keepdims
    shape): the input gradient includes their dependence on ``x``, so they get none of their
    own. ``gamma`` and ``beta`` have their shape.
    """

    @tf.custom_gradient
    def forward(x, gamma, beta):
        scale = gamma * inv_std
        y = x * scale + (beta - mean * scale)

        def grad(dy):
            local_dy = tf.reduce_sum(dy, axes, keepdims=True)
            local_dy_x = tf.reduce_sum(dy * x, axes, keepdims=True)
            # Σ dy·x̂ on this replica is γ's gradient; over all replicas, it enters dx.
            local_dy_xhat = (local_dy_x - mean * local_dy) * inv_std
            mean_dy = _all_sum(local_dy, synchronized) / count
            q = inv_std * _all_sum(local_dy_xhat, synchronized) / count
            # dx = scale·((dy − mean_dy) − q·(x − mean)): centred first, which keeps the
            # rounding small where dy is nearly constant over the batch (dx then nearly 0).
            dx = scale * ((dy - mean_dy) - q * (x - mean))
            return dx, local_dy_xhat, local_dy

        return y, grad

    return forward(x, gamma, beta)


@keras.saving.register_keras_serializable(package="invcl_tf")
class BatchNorm(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` whose training mode uses ``normalize``.

    Same weights, moving statistics and serialisation as Keras's layer. In training its
    statistics are the batch's, reduced across replicas when ``synchronized``, per replica
    otherwise, with exact first and second derivatives either way. Inference uses the moving
    statistics in one fused op. Masks and batch renormalisation fall back to Keras's code.
    """

    def call(self, inputs, training=None, mask=None):
        if mask is not None or self.renorm:
            return super().call(inputs, training=training, mask=mask)
        if not (training and self.trainable):
            return self._inference(inputs)
        # Statistics and normalisation in float32 (or float64) under mixed precision, as Keras.
        x = tf.cast(inputs, tf.float64 if inputs.dtype == tf.float64 else tf.float32)
        axes = list(self._reduction_axes)
        mean, variance, count = batch_moments(x, axes, self.synchronized)
        for moving, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
            batch = tf.cast(tf.reshape(batch, [-1]), moving.dtype)
            moving.assign(moving * self.momentum + batch * (1 - self.momentum))
        shape = tf.shape(mean)
        gamma = (tf.reshape(tf.cast(self.gamma, x.dtype), shape) if self.scale
                 else tf.ones_like(mean))
        beta = (tf.reshape(tf.cast(self.beta, x.dtype), shape) if self.center
                else tf.zeros_like(mean))
        inv_std = tf.math.rsqrt(variance + self.epsilon)
        y = normalize(x, mean, inv_std, count, gamma, beta, axes, self.synchronized)
        return tf.cast(y, self.compute_dtype)


    def _inference(self, inputs):
        # One FusedBatchNormV3 op with the moving statistics: Grappler's remapper folds it with
        # the convolution before it (and a ReLU after) into one oneDNN/cuDNN kernel, which
        # Keras's x·a + b does not get. The op computes in float32 for 16-bit inputs.
        if inputs.shape.rank != 4 or self.axis not in (-1, 3) or inputs.dtype == tf.float64:
            return super().call(inputs, training=False)
        ones = tf.ones_like(self.moving_mean)
        gamma = tf.convert_to_tensor(self.gamma) if self.scale else ones
        beta = tf.convert_to_tensor(self.beta) if self.center else tf.zeros_like(ones)
        x = tf.cast(inputs, self.compute_dtype)
        y = tf.raw_ops.FusedBatchNormV3(
            x=x, scale=gamma, offset=beta, mean=tf.convert_to_tensor(self.moving_mean),
            variance=tf.convert_to_tensor(self.moving_variance), epsilon=self.epsilon,
            data_format="NHWC", is_training=False)[0]
        return y


# Encoders saved before BatchNorm (2026-12-02) name the per-replica layer this way.
keras.saving.get_custom_objects()["invcl_tf>LocalBatchNormalization"] = BatchNorm
