"""CIFAR-style ResNet encoders (torchvision blocks + CIFAR stem, as the InvCLR authors use).

The encoder maps NHWC images to a ``[B, D]`` representation (global average pool, no
classifier). Layers are plain Keras layers so mixed-precision policies, XLA and nested
gradient tapes (the InvCLR gradient penalty) work without special casing.
"""

import math

import keras

from invcl_tf.models.batch_norm import batch_norm
from invcl_tf.models.pooling import GlobalAveragePooling

# name -> (block type, blocks per stage, base width)
ARCHS = {
    "resnet18": ("basic", (2, 2, 2, 2), 64),
    "resnet34": ("basic", (3, 4, 6, 3), 64),
    "resnet50": ("bottleneck", (3, 4, 6, 3), 64),
    "resnet_tiny": ("basic", (1, 1, 1, 1), 8),
}

#: cifar: one 3x3 stride-1 conv, no max-pool (SPEC §4); imagenet: 7x7 stride-2 conv and a 3x3
#: stride-2 max-pool (He et al., SPEC §7), for larger images.
STEMS = ("auto", "cifar", "imagenet")
#: ``auto`` takes the ImageNet stem above this image size.
CIFAR_STEM_MAX_SIZE = 64

_STAGE_WIDTHS = (1, 2, 4, 8)
_STAGE_STRIDES = (1, 2, 2, 2)
_EXPANSION = {"basic": 1, "bottleneck": 4}


def _conv_init():
    # torch.nn.init.kaiming_normal_(mode="fan_out", nonlinearity="relu"), as torchvision does.
    return keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal")


def _conv(x, filters, kernel_size, stride, name):
    if kernel_size > 1 and stride > 1:
        # Keras "same" pads (k//2 − 1, k//2) for stride 2 on even sizes; PyTorch's
        # padding=k//2 pads both sides alike.
        x = keras.layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad")(x)
        padding = "valid"
    else:
        # Here "same" already matches PyTorch: (1, 1) for stride-1 3x3, no pad for any 1x1.
        padding = "same"
    return keras.layers.Conv2D(
        filters, kernel_size, strides=stride, padding=padding, use_bias=False,
        kernel_initializer=_conv_init(), name=name)(x)


def _conv_bn(x, filters, kernel_size, stride, name, sync_bn):
    x = _conv(x, filters, kernel_size, stride, f"{name}_conv")
    return batch_norm(f"{name}_bn", sync_bn)(x)


def _shortcut(x, filters, stride, name, sync_bn):
    if stride == 1 and x.shape[-1] == filters:
        return x
    return _conv_bn(x, filters, 1, stride, f"{name}_shortcut", sync_bn)


def _basic_block(x, planes, stride, name, sync_bn):
    shortcut = _shortcut(x, planes, stride, name, sync_bn)
    y = _conv_bn(x, planes, 3, stride, f"{name}_1", sync_bn)
    y = keras.layers.ReLU(name=f"{name}_1_relu")(y)
    y = _conv_bn(y, planes, 3, 1, f"{name}_2", sync_bn)
    y = keras.layers.Add(name=f"{name}_add")([y, shortcut])
    return keras.layers.ReLU(name=f"{name}_out")(y)


def _bottleneck_block(x, planes, stride, name, sync_bn):
    out_planes = planes * _EXPANSION["bottleneck"]
    shortcut = _shortcut(x, out_planes, stride, name, sync_bn)
    y = _conv_bn(x, planes, 1, 1, f"{name}_1", sync_bn)
    y = keras.layers.ReLU(name=f"{name}_1_relu")(y)
    y = _conv_bn(y, planes, 3, stride, f"{name}_2", sync_bn)
    y = keras.layers.ReLU(name=f"{name}_2_relu")(y)
    y = _conv_bn(y, out_planes, 1, 1, f"{name}_3", sync_bn)
    y = keras.layers.Add(name=f"{name}_add")([y, shortcut])
    return keras.layers.ReLU(name=f"{name}_out")(y)


_BLOCKS = {"basic": _basic_block, "bottleneck": _bottleneck_block}


def _scaled(width, width_multiplier):
    return max(1, int(round(width * width_multiplier)))


def _check(arch, width_multiplier):
    if arch not in ARCHS:
        raise ValueError(
            f"Unknown model.arch {arch!r}; known architectures: {', '.join(sorted(ARCHS))}")
    if not (math.isfinite(width_multiplier) and width_multiplier > 0):
        raise ValueError(
            f"model.width_multiplier must be a finite number > 0, got {width_multiplier!r}")
    return ARCHS[arch]


def representation_dim(arch, width_multiplier=1.0):
    """Dimension D of the representation produced by ``build_encoder(arch, width_multiplier)``."""
    block, _, base = _check(arch, width_multiplier)
    return _scaled(base * _STAGE_WIDTHS[-1], width_multiplier) * _EXPANSION[block]


def resolve_stem(stem, image_size):
    """``stem`` with ``auto`` resolved by the image size (CIFAR stem up to 64 px)."""
    if stem not in STEMS:
        raise ValueError(f"Unknown model.stem {stem!r}; known stems: {', '.join(STEMS)}")
    if stem == "auto":
        return "cifar" if image_size <= CIFAR_STEM_MAX_SIZE else "imagenet"
    return stem


def build_encoder(arch, width_multiplier=1.0, input_shape=(32, 32, 3), name="encoder",
                  sync_bn=True, stem="cifar"):
    """Builds a ResNet encoder: images ``[B, H, W, C]`` -> representation ``[B, D]``.

    ``stem`` is ``cifar`` (3x3 stride 1, no max-pool), ``imagenet`` (7x7 stride 2 + 3x3
    stride-2 max-pool) or ``auto`` (by ``input_shape``'s height). ``sync_bn=True`` makes
    BatchNormalization reduce batch statistics across replicas. Raises ``ValueError`` for an
    unknown ``arch`` or ``stem`` or a non-positive ``width_multiplier``.
    """
    block, blocks_per_stage, base = _check(arch, width_multiplier)
    block_fn = _BLOCKS[block]
    stem = resolve_stem(stem, input_shape[0])

    inputs = keras.Input(shape=input_shape, name="images")
    if stem == "cifar":  # keeps the input resolution
        x = _conv_bn(inputs, _scaled(base, width_multiplier), 3, 1, "stem", sync_bn)
        x = keras.layers.ReLU(name="stem_relu")(x)
    else:
        x = _conv_bn(inputs, _scaled(base, width_multiplier), 7, 2, "stem", sync_bn)
        x = keras.layers.ReLU(name="stem_relu")(x)
        # Zero padding equals PyTorch's −inf padding here: the ReLU output is >= 0.
        x = keras.layers.ZeroPadding2D(1, name="stem_pool_pad")(x)
        x = keras.layers.MaxPooling2D(3, strides=2, name="stem_pool")(x)
    for s, (n_blocks, mult, stride) in enumerate(
            zip(blocks_per_stage, _STAGE_WIDTHS, _STAGE_STRIDES), start=1):
        planes = _scaled(base * mult, width_multiplier)
        for b in range(1, n_blocks + 1):
            x = block_fn(x, planes, stride if b == 1 else 1, f"stage{s}_block{b}", sync_bn)
    outputs = GlobalAveragePooling(name="avg_pool")(x)
    return keras.Model(inputs, outputs, name=name)
