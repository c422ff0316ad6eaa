"""Copies of built models with other layer classes or another dtype policy."""

import keras

from invcl_tf.models.batch_norm import BatchNorm
from invcl_tf.models.pooling import GlobalAveragePooling

# Keras's own class of each layer of this package that has one.
_PLAIN = {BatchNorm: keras.layers.BatchNormalization,
          GlobalAveragePooling: keras.layers.GlobalAveragePooling2D}


def rebuilt(model, plain=None, dtype=None):
    """A copy of ``model`` with its weights.

    ``plain=True`` makes its batch norm and pooling Keras's own layers (files that load
    without this package), ``False`` this package's (fast to train and evaluate on the running
    backend, exact in float64), ``None`` keeps them. ``dtype``, when given, is the dtype policy
    its layers compute under (e.g. ``"mixed_bfloat16"`` for inference).
    """
    fast = {keras_cls: cls for cls, keras_cls in _PLAIN.items()}

    def clone(layer):
        config = layer.get_config()
        if dtype is not None:
            config["dtype"] = dtype
        cls = layer.__class__
        if plain is True:
            cls = next((k for c, k in _PLAIN.items() if isinstance(layer, c)), cls)
        elif plain is False:
            cls = fast.get(cls, cls)
        return cls.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy
