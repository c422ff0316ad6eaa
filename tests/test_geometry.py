"""The differentiable crop/rotation/shift warp: identity, agreement with crop_and_resize,
hand-computed samples, gradients against finite differences, the sampled distribution."""

import math

import numpy as np
import pytest
import tensorflow as tf

from invcl_tf.transforms import crop, geometry


def _images(batch=3, height=9, width=9, channels=3, seed=0):
    return tf.constant(np.random.default_rng(seed).uniform(size=(batch, height, width,
                                                                 channels)), tf.float32)


def _identity(batch, size, extra=()):
    centre = (size - 1) / 2.0
    return tf.constant([[centre, centre, 0.0, 0.0, *extra]] * batch, tf.float32)


@pytest.mark.parametrize("extra", [(), (0.0,), (0.0, 0.0, 0.0)])
def test_identity_parameters_give_the_input_back(extra):
    images = _images()
    out = geometry.warp(images, _identity(3, 9, extra), 9)
    np.testing.assert_allclose(out, images, atol=1e-5)


def test_a_box_warps_as_crop_and_resize_samples_it():
    images = _images(batch=4, height=11, width=11)
    boxes = tf.constant([[0, 0, 11, 11], [2, 3, 5, 7], [4, 1, 6, 4], [0, 6, 11, 5]])
    expected = crop.resize_crops(images, boxes, size=8)
    out = geometry.warp(images, geometry.box_params(boxes, 11, 11), 8)
    # Both bilinear at the same points; float32 rounding of the sample positions apart.
    np.testing.assert_allclose(out, expected, atol=2e-5)


def test_hand_computed_rotation_and_shift():
    # A 3x3 image with distinct values; a quarter turn about the centre maps output (i, j) to
    # input (j' = ...): with R(θ)·(v, u) = (−u, v) for θ = π/2, output row i, column j samples
    # row 1 − (j − 1) = 2 − j, column i.
    image = tf.reshape(tf.range(9, dtype=tf.float32), [1, 3, 3, 1])
    alpha = tf.constant([[1.0, 1.0, 0.0, 0.0, math.pi / 2]])
    out = geometry.warp(image, alpha, 3)[0, :, :, 0].numpy()
    grid = image[0, :, :, 0].numpy()
    expected = np.array([[grid[2 - j, i] for j in range(3)] for i in range(3)])
    np.testing.assert_allclose(out, expected, atol=1e-5)
    # A shift by a third of the side moves samples by one pixel; past the edge, the edge.
    alpha = tf.constant([[1.0, 1.0, 0.0, 0.0, 1.0 / 3.0, 0.0]])
    out = geometry.warp(image, alpha, 3)[0, :, :, 0].numpy()
    np.testing.assert_allclose(out, grid[[1, 2, 2]], atol=1e-5)


def test_gradient_against_finite_differences():
    images = tf.cast(_images(batch=2, height=10, width=10, seed=1), tf.float64)
    alpha = tf.constant([[4.3, 5.1, math.log(0.45), math.log(1.2), 0.3, 0.05, -0.07],
                         [5.0, 4.2, math.log(0.3), math.log(0.8), -0.5, -0.1, 0.02]],
                        tf.float64)
    weights = tf.constant(np.random.default_rng(2).normal(size=(2, 6, 6, 3)), tf.float64)

    def value(a):
        return tf.reduce_sum(geometry.warp(images, a, 6) * weights)

    with tf.GradientTape() as tape:
        tape.watch(alpha)
        total = value(alpha)
    grad = tape.gradient(total, alpha).numpy()
    eps = 1e-6
    numeric = np.zeros_like(grad)
    for b in range(2):
        for k in range(7):
            step = np.zeros(alpha.shape)
            step[b, k] = eps
            numeric[b, k] = (value(alpha + step) - value(alpha - step)) / (2 * eps)
    assert np.abs(grad).min() > 1e-4  # every parameter moves the output
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


def test_sampled_crops_are_the_pipelines_boxes():
    transform = geometry.GeometricTransform(input_size=32, image_size=24, rotation=30,
                                            shift=0.1)
    assert transform.num_params == 7
    seed = tf.constant([3, 4], tf.int64)
    alpha = transform.sample_params(seed, [500])
    boxes = crop.sample_crop_boxes(tf.random.experimental.stateless_fold_in(seed, 0), 500,
                                   32, 32)
    np.testing.assert_allclose(alpha[:, :4], geometry.box_params(boxes, 32, 32), rtol=1e-6)
    rotation, shift = alpha[:, 4].numpy(), alpha[:, 5:].numpy()
    assert np.abs(rotation).max() <= math.radians(30) and np.abs(rotation).max() > 0.4
    assert np.abs(shift).max() <= 0.1
    extra = transform.sample_params(seed, tf.constant([5, 3]))
    assert extra.shape == (5, 3, 7)
    # Only the ranges that are set become parameters.
    assert geometry.GeometricTransform(32, 32).num_params == 4
    assert geometry.GeometricTransform(32, 32, rotation=10).num_params == 5
    assert geometry.GeometricTransform(32, 32, shift=0.1).num_params == 6


def test_apply_flips_the_marked_examples_and_has_the_prior_variance():
    transform = geometry.GeometricTransform(input_size=9, image_size=9)
    images = _images()
    aux = tf.constant([[0.0], [1.0], [0.0]])
    out = transform.apply(images, _identity(3, 9), aux).numpy()
    np.testing.assert_allclose(out[0], images[0], atol=1e-5)
    np.testing.assert_allclose(out[1], images[1, :, ::-1], atol=1e-5)
    variance = transform.param_variance().numpy()
    assert variance.shape == (4,) and np.all(variance > 0)
    # The centre's spread is below that of a uniform over the image (large boxes stay central).
    assert variance[0] < 9 ** 2 / 12


def test_whole_image_warp_rotates_shifts_and_resizes_without_crop_parameters():
    # crop=False (the test-time sweeps): α holds only the rotation and shift.
    image = tf.reshape(tf.range(9, dtype=tf.float32), [1, 3, 3, 1])
    grid = image[0, :, :, 0].numpy()
    turn = geometry.GeometricTransform(None, 3, rotation=90.0, flip=False, crop=False)
    assert turn.names == ("rotation",) and turn.num_params == 1
    no_flip = tf.zeros([1, 1])
    out = turn.apply(image, tf.constant([[math.pi / 2]]), no_flip)[0, :, :, 0].numpy()
    np.testing.assert_allclose(out, [[grid[2 - j, i] for j in range(3)] for i in range(3)],
                               atol=1e-5)
    np.testing.assert_allclose(turn.apply(image, tf.zeros([1, 1]), no_flip), image, atol=1e-6)
    move = geometry.GeometricTransform(None, 3, shift=0.5, flip=False, crop=False)
    assert move.names == ("shift_row", "shift_col")
    out = move.apply(image, tf.constant([[0.0, -1.0 / 3.0]]), no_flip)[0, :, :, 0].numpy()
    np.testing.assert_allclose(out, grid[:, [0, 0, 1]], atol=1e-5)
    # Draws lie in the ranges; no rotation or shift leaves the image resized as the
    # evaluation's uncropped views are (antialiased), in prepare_view.
    angles = turn.sample_params(tf.constant([1, 2], tf.int64), [1000]).numpy()
    assert angles.shape == (1000, 1) and np.abs(angles).max() <= math.pi / 2
    assert np.abs(angles).max() > 0.95 * math.pi / 2
    images = _images(batch=2, height=9, width=9)
    plain = geometry.GeometricTransform(None, 5, flip=False, crop=False)
    alpha = plain.sample_params(tf.constant([1, 2], tf.int64), [2])
    assert alpha.shape == (2, 0)
    expected = tf.image.resize(images, [5, 5], antialias=True)
    out = plain.apply(plain.prepare_view(images, None), alpha, tf.zeros([2, 1]))
    np.testing.assert_allclose(out, expected, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Composition with the colour distortion, and the penalty through both


def _composed(input_size=12, image_size=8, **kwargs):
    from invcl_tf.transforms import base, images

    colour = images.ImageTransform((0.5, 0.4, 0.3), (0.2, 0.25, 0.3), crop=False, flip=False,
                                   image_size=image_size)
    warp_ = geometry.GeometricTransform(input_size, image_size, **kwargs)
    return base.Composed(warp_, colour), warp_, colour


def test_composed_applies_geometry_then_colour_with_concatenated_parameters():
    transform, warp_, colour = _composed(rotation=20)
    assert transform.num_params == 5 + 4 and transform.num_aux == 1 + 2
    assert transform.image_size == 8
    seed = tf.constant([5, 6], tf.int64)
    alpha = transform.sample_params(seed, [4])
    aux = transform.sample_aux(seed, 4)
    fold = tf.random.experimental.stateless_fold_in
    np.testing.assert_array_equal(alpha[:, :5], warp_.sample_params(fold(seed, 0), [4]))
    np.testing.assert_array_equal(alpha[:, 5:], colour.sample_params(fold(seed, 1), [4]))
    np.testing.assert_array_equal(aux[:, 1:], colour.sample_aux(fold(seed, 1), 4))
    images = transform.prepare_view(_images(4, 12, 12), seed)
    assert images.shape == (4, 12, 12, 3)  # uncropped: the crop is in apply
    by_hand = colour.apply(warp_.apply(images, alpha[:, :5], aux[:, :1]), alpha[:, 5:],
                           aux[:, 1:])
    np.testing.assert_array_equal(transform.apply(images, alpha, aux), by_hand)
    assert transform.param_variance().shape == (9,)
    # The evaluation's variants without the crop are the colour transform's own.
    assert isinstance(transform.variant(crop=False, flip=False), type(colour))


def test_penalty_differentiates_through_the_crop_box():
    from invcl_tf.penalty import gradient_penalty

    transform, _, _ = _composed()
    images = transform.prepare_view(_images(4, 12, 12, seed=3), tf.constant([0, 0]))
    seed = tf.constant([1, 2], tf.int64)
    alpha = transform.sample_params(seed, [4])
    aux = tf.constant([[0.0, 1.0, 0.0]] * 4)  # no flip; colour jitter applied; no gray
    extra = transform.sample_params(seed + 1, [4, 5])
    weights = tf.constant(np.random.default_rng(0).normal(size=(8 * 8 * 3, 6)), tf.float32)

    def represent(a):
        return tf.reshape(transform.apply(images, a, aux), [4, -1]) @ weights

    with tf.GradientTape() as tape:
        tape.watch(alpha)
        h = represent(alpha)
        s = tf.reduce_sum(tf.math.l2_normalize(h, axis=1) * tf.ones_like(h))
    grad = tape.gradient(s, alpha)
    assert np.abs(grad[:, :4].numpy()).max() > 1e-3  # the box moves the representation
    penalty, _ = gradient_penalty(represent, alpha, extra, clip=1e6,
                                  signs=tf.ones([4, 6]))
    # Only the box varies between α and α′ in the first four columns; zeroing their
    # differences leaves the colour's share alone, which is smaller.
    same_box = tf.concat([tf.broadcast_to(alpha[:, None, :4], [4, 5, 4]), extra[..., 4:]], -1)
    colour_only, _ = gradient_penalty(represent, alpha, same_box, clip=1e6,
                                      signs=tf.ones([4, 6]))
    assert float(penalty) > float(colour_only) > 0


# ---------------------------------------------------------------------------------------------
# Configuration


def test_configs_choose_what_the_penalty_covers():
    from invcl_tf import configuration
    from invcl_tf.data import sources
    from tests.repo_configs import cifar10, config_path

    geo = configuration.import_config_file(config_path("spirograph_geo")).get_config("tiny")
    configuration.validate(geo)
    transform, _ = sources.transform_for(geo)
    assert transform.num_params == 9 and tuple(geo.report.weights) == (0.0, 0.01)
    config = cifar10.get_config("tiny")
    assert sources.transform_for(config)[0].num_params == 4  # default: the paper's colour
    config.gp.covers = "color+geometry"
    config.dataset.rotation = 10.0
    configuration.validate(config)
    assert sources.transform_for(config)[0].num_params == 5 + 4
    for field, value, named in (("gp.covers", "geometry", "gp.covers"),
                                ("dataset.shift", -0.1, "dataset.rotation/shift"),
                                ("eval.rotation_values", (0.0, -5.0), "eval.rotation_values"),
                                ("eval.shift_values", (-0.1,), "eval.shift_values")):
        bad = cifar10.get_config("tiny")
        section, name = field.split(".")
        setattr(getattr(bad, section), name, value)
        with pytest.raises(configuration.ConfigError, match=named):
            configuration.validate(bad)
    bad = cifar10.get_config("tiny")
    bad.dataset.rotation = 5.0  # without the warp in the step it would be ignored
    with pytest.raises(configuration.ConfigError, match="gp.covers=color\\+geometry"):
        configuration.validate(bad)
    geo.gp.covers = "color+geometry"
    with pytest.raises(configuration.ConfigError, match="gp.covers"):
        configuration.validate(geo)
