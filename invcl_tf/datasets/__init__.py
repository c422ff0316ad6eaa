"""TFDS dataset builders; import a builder's package (e.g. ``invcl_tf.datasets.spirograph``) to register it."""
