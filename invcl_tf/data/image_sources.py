"""Streaming image sources: a folder of image files (``image_folders``) or a prepared TFDS
dataset (``tfds_images``), each as train and test ``ImageSplit``s (``image_splits``)."""

from invcl_tf.data.image_folders import folder_source
from invcl_tf.data.image_splits import channel_stats, decode
from invcl_tf.data.tfds_images import tfds_source
from invcl_tf.errors import DataError

__all__ = ["channel_stats", "decode", "load_image_source"]


def _fail(message):
    raise DataError(message)


def load_image_source(config):
    """(train, test, class_names or None) for config.dataset.name "folder" or "tfds:NAME".

    Everything that can be checked before training is checked here (missing data, layout,
    split and feature names, file headers); errors are one-line ``DataError``s.
    """
    dataset = config.dataset
    decode_size = dataset.get("decode_size", None) or dataset.get("image_size", None)
    if not decode_size or decode_size < 1:
        _fail("--config.dataset.decode_size: not set; pass the side images are decoded to, "
              "e.g. --config.dataset.decode_size=32")
    decode_size = int(decode_size)
    name = dataset.get("name", None)
    if name == "folder":
        return folder_source(dataset, decode_size)
    if isinstance(name, str) and name.startswith("tfds:") and name[len("tfds:"):]:
        return tfds_source(dataset, decode_size, name[len("tfds:"):])
    _fail(f"--config.dataset.name: {name!r} is not an image source; use folder or tfds:NAME")
