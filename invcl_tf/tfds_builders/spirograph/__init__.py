"""The ``spirograph`` TFDS dataset; importing this package registers it with TFDS."""

from .spirograph_dataset_builder import Builder, SpirographConfig

__all__ = ["Builder", "SpirographConfig"]
