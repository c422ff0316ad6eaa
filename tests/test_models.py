"""Tests for the CIFAR ResNet encoders and the projection head."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from invcl_tf.models.head import build_projection_head
from invcl_tf.models.batch_norm import BatchNorm
from invcl_tf.models.resnet import (ARCHS, build_encoder,
                                    representation_dim)


def _images(batch=2, size=32, seed=0):
    return tf.random.stateless_normal([batch, size, size, 3], seed=[seed, 1])


def _bn_layers(model):
    return [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]


def _conv_layers(model):
    return [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]


def _count(variables):
    return sum(math.prod(v.shape) for v in variables)


def _randomise_bn(model):
    """Non-trivial BN parameters and running statistics, so inference-mode checks see them."""
    rng = np.random.default_rng(0)
    for bn in _bn_layers(model):
        (c,) = bn.moving_mean.shape
        bn.moving_mean.assign(rng.normal(0.0, 0.2, c).astype("float32"))
        bn.moving_variance.assign(rng.uniform(0.5, 1.5, c).astype("float32"))
        if bn.scale:
            bn.gamma.assign(rng.uniform(0.5, 1.5, c).astype("float32"))
        if bn.center:
            bn.beta.assign(rng.normal(0.0, 0.2, c).astype("float32"))


@pytest.mark.parametrize("arch, width, dim", [
    ("resnet_tiny", 1.0, 64),          # 8 * 8
    ("resnet_tiny", 0.125, 8),         # round(64 / 8)
    ("resnet18", 0.125, 64),           # 512 / 8
    ("resnet34", 0.125, 64),
    ("resnet50", 0.0625, 128),         # 512 / 16 * expansion 4
])
def test_encoder_output_shape_and_dim(arch, width, dim):
    encoder = build_encoder(arch, width)
    assert representation_dim(arch, width) == dim
    assert encoder(_images(), training=False).shape == (2, dim)
    # Strides (1, 2, 2, 2) after a stride-1 stem and no max-pool: 32 -> 32, 16, 8, 4.
    last_block = f"stage4_block{ARCHS[arch][1][3]}_out"
    assert encoder.get_layer(last_block).output.shape == (None, 4, 4, dim)
    assert encoder.get_layer("stem_conv").strides == (1, 1)
    assert not any(isinstance(l, keras.layers.MaxPooling2D) for l in encoder.layers)


def test_encoder_accepts_other_input_sizes():
    encoder = build_encoder("resnet_tiny", input_shape=(40, 40, 3))
    assert encoder(_images(size=40), training=False).shape == (2, 64)


# Trainable counts equal PyTorch's parameters() of the kuangliu/torchvision CIFAR ResNet
# without its final Linear; Keras additionally holds the BN running mean and variance as
# non-trainable weights (2 per BN channel), which PyTorch keeps as buffers.
#
# resnet18 convs: stem 3*64*9 = 1,728; stage1 4 * 64*64*9 = 147,456;
#   stage2 64*128*9 + 3 * 128*128*9 + shortcut 64*128 = 524,288;
#   stage3 128*256*9 + 3 * 256*256*9 + 128*256 = 2,097,152;
#   stage4 256*512*9 + 3 * 512*512*9 + 256*512 = 8,388,608; total 11,159,232.
#   BN channels: 64 + 4*64 + (4*128 + 128) + (4*256 + 256) + (4*512 + 512) = 4,800,
#   i.e. 9,600 gammas/betas -> 11,168,832 trainable (= the well-known 11,173,962 of
#   kuangliu's CIFAR-10 ResNet18 minus its 512*10 + 10 classifier); 9,600 running stats.
# resnet34 adds 1/2/4/1 BasicBlocks per stage over resnet18: convs 2*(64*64*9)
#   + 4*(128*128*9) + 8*(256*256*9) + 2*(512*512*9) = 10,100,736 and BN channels
#   2*64 + 4*128 + 8*256 + 2*512 = 3,712 -> 11,168,832 + 10,100,736 + 7,424 = 21,276,992
#   (= kuangliu's 21,282,122 minus 5,130); running stats (4,800 + 3,712) * 2 = 17,024.
# resnet50 convs per stage (first block incl. 1x1 shortcut + remaining blocks):
#   stem 1,728; stage1 73,728 + 2 * 69,632; stage2 376,832 + 3 * 278,528;
#   stage3 1,507,328 + 5 * 1,114,112; stage4 6,029,312 + 2 * 4,456,448; total 23,447,232.
#   BN channels 64 + 1,408 + 3,584 + 10,240 + 11,264 = 26,560 -> 23,447,232 + 53,120 =
#   23,500,352 trainable (= kuangliu's 23,520,842 minus 2048*10 + 10); 53,120 running stats.
@pytest.mark.parametrize("arch, trainable, non_trainable, dim", [
    ("resnet18", 11_168_832, 9_600, 512),
    ("resnet34", 21_276_992, 17_024, 512),
    ("resnet50", 23_500_352, 53_120, 2048),
])
def test_parameter_counts_match_pytorch(arch, trainable, non_trainable, dim):
    encoder = build_encoder(arch)
    assert _count(encoder.trainable_weights) == trainable
    assert _count(encoder.non_trainable_weights) == non_trainable
    assert encoder.output.shape == (None, dim) and representation_dim(arch) == dim


def _reference_forward(encoder, arch, x):
    """Inference-mode forward with raw TF ops and PyTorch's symmetric conv padding."""
    block, blocks_per_stage, _ = ARCHS[arch]

    def conv_bn(x, name, stride):
        kernel = encoder.get_layer(f"{name}_conv").kernel
        pad = (kernel.shape[0] - 1) // 2  # PyTorch: padding=1 for 3x3, 0 for 1x1
        x = tf.nn.conv2d(x, kernel, stride, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
        bn = encoder.get_layer(f"{name}_bn")
        return (x - bn.moving_mean) / tf.sqrt(bn.moving_variance + 1e-5) * bn.gamma + bn.beta

    x = tf.nn.relu(conv_bn(x, "stem", 1))
    for s, n_blocks in enumerate(blocks_per_stage, start=1):
        for b in range(1, n_blocks + 1):
            name, stride = f"stage{s}_block{b}", (2 if s > 1 and b == 1 else 1)
            if block == "basic":
                y = tf.nn.relu(conv_bn(x, f"{name}_1", stride))
                y = conv_bn(y, f"{name}_2", 1)
            else:
                y = tf.nn.relu(conv_bn(x, f"{name}_1", 1))
                y = tf.nn.relu(conv_bn(y, f"{name}_2", stride))
                y = conv_bn(y, f"{name}_3", 1)
            needs_projection = stride != 1 or x.shape[-1] != y.shape[-1]
            shortcut = conv_bn(x, f"{name}_shortcut", stride) if needs_projection else x
            x = tf.nn.relu(y + shortcut)
    return tf.reduce_mean(x, axis=[1, 2])


@pytest.mark.parametrize("arch, width", [("resnet_tiny", 1.0), ("resnet50", 0.0625)])
def test_encoder_matches_pytorch_style_reference(arch, width):
    encoder = build_encoder(arch, width)
    _randomise_bn(encoder)
    x = _images(seed=3)
    np.testing.assert_allclose(encoder(x, training=False), _reference_forward(encoder, arch, x),
                               rtol=1e-4, atol=1e-5)


def test_strided_conv_pads_symmetrically_like_pytorch():
    encoder = build_encoder("resnet_tiny")
    conv = encoder.get_layer("stage2_block1_1_conv")
    probe = keras.Model(encoder.input,
                        [encoder.get_layer("stage1_block1_out").output, conv.output])
    features, strided = probe(_images(seed=4), training=False)
    assert features.shape[1:3] == (32, 32) and strided.shape[1:3] == (16, 16)
    symmetric = tf.nn.conv2d(features, conv.kernel, 2, [[0, 0], [1, 1], [1, 1], [0, 0]])
    np.testing.assert_allclose(strided, symmetric, rtol=1e-5, atol=1e-5)
    # Keras/TF "SAME" would pad (0, 1) and sample shifted windows; make sure that differs.
    same = tf.nn.conv2d(features, conv.kernel, 2, "SAME")
    assert np.max(np.abs(same.numpy() - strided.numpy())) > 1e-2


def test_initialisation_statistics():
    encoder = build_encoder("resnet18")
    for conv in _conv_layers(encoder):
        kh, kw, _, out = conv.kernel.shape
        expected = math.sqrt(2.0 / (kh * kw * out))
        assert abs(np.std(conv.kernel.numpy()) / expected - 1.0) < 0.1, conv.name
        assert conv.bias is None
    for bn in _bn_layers(encoder):
        np.testing.assert_array_equal(bn.gamma.numpy(), 1.0)
        np.testing.assert_array_equal(bn.beta.numpy(), 0.0)
        assert bn.momentum == pytest.approx(0.9) and bn.epsilon == pytest.approx(1e-5)


def _penalty_grads(encoder, x):
    """d/dθ ||∂ sum(h) / ∂x||², the shape of InvCLR's gradient penalty."""
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            inner.watch(x)
            h = encoder(x, training=True)
            total = tf.reduce_sum(tf.cast(h, tf.float32))
        grad_x = inner.gradient(total, x)
        penalty = tf.reduce_sum(tf.square(tf.cast(grad_x, tf.float32)))
    return outer.gradient(penalty, encoder.trainable_variables)


def _check_grads(grads):
    assert all(g is not None for g in grads)
    values = [np.asarray(g, dtype=np.float32) for g in grads]
    assert all(np.all(np.isfinite(v)) for v in values)
    assert sum(float(np.sum(np.abs(v))) for v in values) > 0.0


def test_second_order_gradients_eager_and_xla():
    encoder = build_encoder("resnet_tiny")
    x = _images(seed=5)
    eager = _penalty_grads(encoder, x)
    _check_grads(eager)
    conv_grads = [g for g, v in zip(eager, encoder.trainable_variables) if "kernel" in v.path]
    assert all(np.any(g.numpy() != 0.0) for g in conv_grads)

    xla = tf.function(lambda x: _penalty_grads(encoder, x), jit_compile=True)(x)
    _check_grads(xla)
    # Both against the same encoder in float64: float32 rounding, relative to each tensor's
    # scale (entries near 0 carry the absolute rounding of the large ones).
    reference = _penalty_grads(_float64_copy(encoder), tf.cast(x, tf.float64))
    for e, j, r in zip(eager, xla, reference):
        scale = float(np.max(np.abs(r)))
        np.testing.assert_allclose(e, r, rtol=0, atol=1e-4 * scale)
        np.testing.assert_allclose(j, r, rtol=0, atol=1e-4 * scale)


def _float64_copy(model):
    keras.mixed_precision.set_dtype_policy("float64")
    try:
        copy = model.__class__.from_config(model.get_config())
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    copy.set_weights(model.get_weights())
    return copy


@pytest.mark.parametrize("synchronized", [True, False])
def test_batch_norm_derivatives_match_keras_autodiff_in_float64(synchronized):
    """The closed-form gradient of ``BatchNorm`` against Keras's layer differentiated by
    autodiff (``tf.nn.moments`` with the mean kept differentiable): outputs, moving statistics,
    first derivatives (input, γ, β) and the second derivatives the penalty takes."""
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(2.0, 3.0, size=(6, 3, 2, 5)))
    upstream = tf.constant(rng.normal(size=(6, 3, 2, 5)))
    weights = [rng.normal(1.0, 0.3, size=5), rng.normal(size=5), rng.normal(size=5),
               rng.uniform(0.5, 2.0, size=5)]

    def keras_moments(self, inputs, mask):
        mean = tf.reduce_mean(inputs, self._reduction_axes, keepdims=True)
        variance = tf.reduce_mean(tf.square(inputs - mean), self._reduction_axes)
        return tf.squeeze(mean, self._reduction_axes), variance

    layers = []
    for cls in (BatchNorm, keras.layers.BatchNormalization):
        keras.mixed_precision.set_dtype_policy("float64")
        try:
            layer = cls(momentum=0.9, epsilon=1e-5, synchronized=synchronized)
            layer.build(x.shape)
        finally:
            keras.mixed_precision.set_dtype_policy("float32")
        layer.set_weights(weights)
        layers.append(layer)
    layers[1]._moments = keras_moments.__get__(layers[1])

    def derivatives(layer):
        with tf.GradientTape(persistent=True) as outer:
            outer.watch(x)
            with tf.GradientTape() as inner:
                inner.watch(x)
                y = layer(x, training=True)
                first = tf.reduce_sum(y * upstream)
            dx, dgamma, dbeta = inner.gradient(first, [x, layer.gamma, layer.beta])
            second = tf.reduce_sum(tf.square(dx)) + tf.reduce_sum(dgamma * dbeta)
        return [y, dx, dgamma, dbeta, *outer.gradient(
                    second, [x, layer.gamma.value, layer.beta.value],
                    unconnected_gradients=tf.UnconnectedGradients.ZERO),
                layer.moving_mean, layer.moving_variance]

    ours, theirs = derivatives(layers[0]), derivatives(layers[1])
    for name, a, b in zip(["y", "dx", "dgamma", "dbeta", "ddx", "ddgamma", "ddbeta",
                           "moving_mean", "moving_variance"], ours, theirs):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-9, atol=1e-12,
                                   err_msg=name)


def test_mixed_precision_second_order_gradients():
    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    try:
        encoder = build_encoder("resnet_tiny")
        x = _images(seed=6)
        assert encoder(x, training=False).dtype == tf.bfloat16
        assert all(v.dtype == "float32" for v in encoder.weights)
        _check_grads(_penalty_grads(encoder, x))
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


def test_sync_bn_is_the_default_and_local_bn_round_trips(tmp_path):
    encoder = build_encoder("resnet_tiny")
    head = build_projection_head(64)
    assert all(bn.synchronized for bn in _bn_layers(encoder) + _bn_layers(head))
    assert head(encoder(_images(), training=True), training=True).shape == (2, 128)
    local = build_encoder("resnet_tiny", sync_bn=False)
    assert all(isinstance(bn, BatchNorm) and not bn.synchronized
               for bn in _bn_layers(local))
    _randomise_bn(local)
    local.save(tmp_path / "local.keras")
    loaded = keras.saving.load_model(tmp_path / "local.keras")
    assert all(isinstance(bn, BatchNorm) for bn in _bn_layers(loaded))
    x = _images(seed=3)
    np.testing.assert_allclose(loaded(x, training=True), local(x, training=True), rtol=1e-5,
                               atol=1e-5)


def test_keras_round_trip(tmp_path):
    encoder = build_encoder("resnet_tiny")
    head = build_projection_head(64, hidden_dim=32)
    _randomise_bn(encoder)
    _randomise_bn(head)
    x = _images(seed=7)
    for model in (encoder, head):
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        restored = keras.models.load_model(path)
        np.testing.assert_array_equal(restored(x, training=False), model(x, training=False))
        x = model(x, training=False)


@pytest.mark.parametrize("kwargs, match", [
    (dict(arch="resnet19"), r"model\.arch.*resnet18, resnet34, resnet50, resnet_tiny"),
    (dict(arch="resnet18", width_multiplier=0), r"model\.width_multiplier"),
    (dict(arch="resnet18", width_multiplier=-1.0), r"model\.width_multiplier"),
    (dict(arch="resnet18", width_multiplier=float("nan")), r"model\.width_multiplier"),
])
def test_bad_config_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_encoder(**kwargs)
    with pytest.raises(ValueError, match=match):
        representation_dim(**kwargs)


@pytest.mark.parametrize("hidden_dim, expected_hidden", [(None, 64), (32, 32)])
def test_projection_head_structure(hidden_dim, expected_hidden):
    head = build_projection_head(64, hidden_dim=hidden_dim, output_dim=16)
    z = head(tf.random.normal([4, 64]), training=True)
    assert z.shape == (4, 16)
    dense_1, dense_2 = (head.get_layer(n) for n in ("dense_1", "dense_2"))
    assert dense_1.kernel.shape == (64, expected_hidden)
    assert dense_2.kernel.shape == (expected_hidden, 16)
    assert not any("bias" in v.path for v in head.weights)
    last_bn = head.get_layer("bn_2")
    assert last_bn.gamma is None and last_bn.beta is None and not last_bn.trainable_weights
    # Non-affine BN in training mode standardises each output coordinate over the batch.
    np.testing.assert_allclose(np.mean(z, axis=0), 0.0, atol=1e-5)
    # Trainable: 64*h + 2*h (gamma/beta of bn_1) + h*16; nothing from bn_2.
    assert _count(head.trainable_weights) == 64 * expected_hidden + 2 * expected_hidden \
        + expected_hidden * 16


def test_projection_head_init_and_validation():
    head = build_projection_head(512)
    kernel = head.get_layer("dense_1").kernel.numpy()
    bound = 1.0 / math.sqrt(512)  # PyTorch nn.Linear default: U(-1/sqrt(fan_in), ...)
    assert np.max(np.abs(kernel)) <= bound
    assert abs(np.std(kernel) / (bound / math.sqrt(3.0)) - 1.0) < 0.05
    with pytest.raises(ValueError, match="output_dim"):
        build_projection_head(64, output_dim=0)
    with pytest.raises(ValueError, match="hidden_dim"):
        build_projection_head(64, hidden_dim=0)
