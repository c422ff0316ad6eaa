"""The projection head g: representation ``[B, D]`` -> embedding ``[B, output_dim]``."""

import numbers

import keras

from invcl_tf.models.batch_norm import batch_norm


def _dense(units, name):
    # PyTorch nn.Linear's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    return keras.layers.Dense(
        units, use_bias=False,
        kernel_initializer=keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform"),
        name=name)


def build_projection_head(input_dim, hidden_dim=None, output_dim=128, sync_bn=True,
                          name="head"):
    """Builds Dense -> BN -> ReLU -> Dense -> BN (no affine) as a functional ``keras.Model``.

    ``hidden_dim`` defaults to ``input_dim``; ``sync_bn=True`` synchronises BN across replicas.
    """
    hidden_dim = input_dim if hidden_dim is None else hidden_dim
    for field, value in (("input_dim", input_dim), ("hidden_dim", hidden_dim),
                         ("output_dim", output_dim)):
        if isinstance(value, bool) or not (isinstance(value, numbers.Integral) and value > 0):
            raise ValueError(f"projection head {field} must be a positive int, got {value!r}")

    inputs = keras.Input(shape=(input_dim,), name="representation")
    x = _dense(hidden_dim, "dense_1")(inputs)
    x = batch_norm("bn_1", sync_bn)(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = _dense(output_dim, "dense_2")(x)
    # As in the authors' TwoLayerCritic: no Dense biases (the following BN cancels them) and a
    # non-affine output BN, so every coordinate reaches the cosine critic standardised.
    x = batch_norm("bn_2", sync_bn, center=False, scale=False)(x)
    return keras.Model(inputs, x, name=name)
