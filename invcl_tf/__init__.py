"""InvCLR in TensorFlow/Keras 3: contrastive learning with a transformation-invariance penalty."""
