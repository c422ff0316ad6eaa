"""TFDS dataset builders; importing a builder's package registers it (``.spirograph``)."""
