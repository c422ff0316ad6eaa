"""Tests of the differentiable colour distortion (SPEC §2) and the CIFAR transformation."""

import math

import numpy as np
import pytest
import tensorflow as tf

from invcl_tf.transforms import images as image_transforms
from invcl_tf.transforms import color
from tests.numpy_references import GRAY, T_RGB, T_YIQ, reference_jitter

# What the hue step does at η = 0: the two matrices are not exact inverses.
HUE_IDENTITY = T_RGB @ T_YIQ

# One 2×2 image with hand-picked pixels: (0.2, 0.4, 0.6), (0.8, 0.5, 0.1), (0, 1, 0.3), 0.9 gray.
PIXELS = np.array([[[[0.2, 0.4, 0.6], [0.8, 0.5, 0.1]],
                    [[0.0, 1.0, 0.3], [0.9, 0.9, 0.9]]]])
# gray of each pixel by hand: 0.0598 + 0.2348 + 0.0684, 0.2392 + 0.2935 + 0.0114, ...
PIXEL_GRAYS = np.array([[[0.363, 0.5441], [0.6212, 0.9]]])


def run_jitter(images, params, dtype=tf.float64):
    return color.jitter(tf.constant(images, dtype), tf.constant(params, dtype)).numpy()


def after_hue_at_zero(images):
    return images @ HUE_IDENTITY.T


def test_gray_weights_by_hand():
    np.testing.assert_allclose(PIXELS[0] @ GRAY, PIXEL_GRAYS[0], atol=1e-12)
    gray = color.grayscale(tf.constant(PIXELS)).numpy()
    np.testing.assert_allclose(gray, np.repeat(PIXEL_GRAYS[..., None], 3, axis=-1), atol=1e-12)


def test_hue_zero_is_the_product_of_the_two_matrices():
    out = run_jitter(PIXELS, [[1.0, 1.0, 1.0, 0.0]])
    np.testing.assert_allclose(out, after_hue_at_zero(PIXELS), atol=1e-12)
    np.testing.assert_allclose(color.hue_matrices(tf.zeros([1], tf.float64))[0], HUE_IDENTITY,
                               atol=1e-12)
    # Close to identity but not equal: e.g. the blue row's first entry is −1.017e−3.
    assert HUE_IDENTITY[2, 0] == pytest.approx(-1.017e-3, abs=1e-9)
    # A gray pixel v becomes v times the row sums (1.000335, 1.000375, 0.997188).
    np.testing.assert_allclose(out[0, 1, 1], [0.9003015, 0.9003375, 0.8974692], atol=1e-12)


def test_brightness_by_hand_with_clip():
    out = run_jitter(PIXELS, [[1.25, 1.0, 1.0, 0.0]])
    # 0.9·1.25 = 1.125 and 1·1.25 are clipped to 1.
    expected = np.array([[[[0.25, 0.5, 0.75], [1.0, 0.625, 0.125]],
                          [[0.0, 1.0, 0.375], [1.0, 1.0, 1.0]]]])
    np.testing.assert_allclose(out, after_hue_at_zero(expected), atol=1e-12)


def test_contrast_uses_one_gray_mean_per_image():
    # Image 0 has mean gray (0.363 + 0.5441 + 0.6212 + 0.9) / 4 = 0.607075; image 1 is its
    # half-brightness copy, so a mean over the batch would differ.
    images = np.concatenate([PIXELS, 0.5 * PIXELS])
    means = np.array([0.607075, 0.3035375])
    out = run_jitter(images, [[1.0, 0.5, 1.0, 0.0], [1.0, 1.4, 1.0, 0.0]])
    expected = np.stack([
        0.5 * images[0] + 0.5 * means[0],
        np.clip(1.4 * images[1] - 0.4 * means[1], 0.0, 1.0),
    ])
    np.testing.assert_allclose(out, after_hue_at_zero(expected), atol=1e-12)
    # The first image's first pixel by hand: 0.5·(0.2, 0.4, 0.6) + 0.3035375.
    np.testing.assert_allclose(expected[0, 0, 0], [0.4035375, 0.5035375, 0.6035375], atol=1e-12)


def test_contrast_clips_both_ends():
    # c = 1.4: 0 → −0.4·0.607075 < 0 and 1 → 1.4 − 0.242830 > 1 are clipped.
    out = run_jitter(PIXELS, [[1.0, 1.4, 1.0, 0.0]])
    expected = np.clip(1.4 * PIXELS - 0.4 * 0.607075, 0.0, 1.0)
    assert expected[0, 1, 0, 0] == 0.0 and expected[0, 1, 0, 1] == 1.0
    np.testing.assert_allclose(out, after_hue_at_zero(expected), atol=1e-12)


def test_contrast_mean_is_taken_after_brightness():
    out = run_jitter(PIXELS, [[1.25, 0.5, 1.0, 0.0]])
    bright = np.clip(1.25 * PIXELS, 0.0, 1.0)
    expected = 0.5 * bright + 0.5 * (bright @ GRAY).mean()
    np.testing.assert_allclose(out, after_hue_at_zero(expected), atol=1e-12)


def test_saturation_by_hand():
    gray = PIXEL_GRAYS[..., None]
    # σ = 0 leaves the per-pixel gray; σ = 2 gives 2x − gray, clipped.
    out0 = run_jitter(PIXELS, [[1.0, 1.0, 0.0, 0.0]])
    np.testing.assert_allclose(out0, after_hue_at_zero(np.repeat(gray, 3, -1)), atol=1e-12)
    out2 = run_jitter(PIXELS, [[1.0, 1.0, 2.0, 0.0]])
    expected = np.clip(2.0 * PIXELS - gray, 0.0, 1.0)
    # (0.8, 0.5, 0.1) → (1.0559 → 1, 0.4559, −0.3441 → 0).
    np.testing.assert_allclose(expected[0, 0, 1], [1.0, 0.4559, 0.0], atol=1e-12)
    np.testing.assert_allclose(out2, after_hue_at_zero(expected), atol=1e-12)


def test_hue_quarter_turn_against_numpy():
    # η = 0.25: θ = π/2, R = [[1, 0, 0], [0, 0, −1], [0, 1, 0]].
    rotation = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    matrix = T_RGB @ rotation @ T_YIQ
    out = run_jitter(PIXELS, [[1.0, 1.0, 1.0, 0.25]])
    np.testing.assert_allclose(out, PIXELS @ matrix.T, atol=1e-12)
    # No clip after the hue step: some values leave [0, 1].
    assert out.min() < 0.0


def test_composition_matches_reference_on_random_data():
    rng = np.random.default_rng(0)
    images = rng.uniform(0.0, 1.0, (6, 5, 7, 3))
    params = image_transforms.sample_jitter_params([3, 4], [6], strength=1.0).numpy().astype(np.float64)
    expected = reference_jitter(images, params)
    np.testing.assert_allclose(run_jitter(images, params), expected, atol=1e-12)
    np.testing.assert_allclose(run_jitter(images, params, tf.float32), expected, atol=2e-6)
    assert run_jitter(images, params, tf.float32).dtype == np.float32


def test_random_color_masks_select_per_example():
    rng = np.random.default_rng(1)
    images = rng.uniform(0.0, 1.0, (4, 3, 3, 3))
    params = np.array([[1.3, 0.7, 1.2, 0.05]] * 4)
    masks = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    out = color.random_color(tf.constant(images), tf.constant(params), tf.constant(masks))
    jittered = reference_jitter(images, params)

    def gray3(x):
        return np.repeat((x @ GRAY)[..., None], 3, -1)

    expected = [images[0], jittered[1], gray3(images[2]), gray3(jittered[3])]
    np.testing.assert_allclose(out.numpy(), np.stack(expected), atol=1e-12)


def finite_difference_grad(fn, params, eps=1e-6):
    grad = np.zeros_like(params)
    for index in np.ndindex(params.shape):
        step = np.zeros_like(params)
        step[index] = eps
        grad[index] = (fn(params + step) - fn(params - step)) / (2.0 * eps)
    return grad


def test_gradient_wrt_params_matches_finite_differences():
    rng = np.random.default_rng(2)
    # Inputs in [0.3, 0.6] and factors near 1 keep every clip inactive (away from the kinks).
    images = tf.constant(rng.uniform(0.3, 0.6, (3, 4, 4, 3)))
    params = np.array([[1.1, 0.9, 1.05, 0.07], [0.95, 1.1, 0.9, -0.04], [1.0, 1.0, 1.0, 0.0]])
    weights = tf.constant(rng.normal(size=(3, 4, 4, 3)))
    masks = tf.constant([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]], tf.float64)

    for fn in (lambda p: color.jitter(images, p),
               lambda p: color.random_color(images, p, masks)):
        def objective(p, fn=fn):
            return float(tf.reduce_sum(fn(tf.constant(p)) * weights))

        alpha = tf.Variable(params)
        with tf.GradientTape() as tape:
            value = tf.reduce_sum(fn(alpha) * weights)
        grad = tape.gradient(value, alpha).numpy()
        np.testing.assert_allclose(grad, finite_difference_grad(objective, params),
                                   rtol=1e-6, atol=1e-8)
        assert np.all(np.abs(grad[:2]) > 1e-6)
    # Without the jitter mask no gradient reaches the parameters.
    assert np.all(grad[2] == 0.0)


def test_gradient_wrt_images_matches_finite_differences():
    rng = np.random.default_rng(3)
    images = rng.uniform(0.3, 0.6, (1, 2, 2, 3))
    params = tf.constant([[1.1, 0.9, 1.05, 0.07]], tf.float64)
    weights = tf.constant(rng.normal(size=(1, 2, 2, 3)))

    def objective(x):
        return float(tf.reduce_sum(color.jitter(tf.constant(x), params) * weights))

    x = tf.Variable(images)
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(color.jitter(x, params) * weights)
    np.testing.assert_allclose(tape.gradient(value, x).numpy(),
                               finite_difference_grad(objective, images), rtol=1e-6, atol=1e-8)


def test_masks_probabilities_and_determinism():
    n = 20000
    masks = image_transforms.sample_masks([7, 8], n).numpy()
    assert masks.shape == (n, 2) and masks.dtype == np.float32
    assert set(np.unique(masks)) <= {0.0, 1.0}
    for column, p in ((0, 0.8), (1, 0.2)):
        assert abs(masks[:, column].mean() - p) < 4.5 * math.sqrt(p * (1 - p) / n)
    both = (masks[:, 0] * masks[:, 1]).mean()
    assert abs(both - 0.16) < 4.5 * math.sqrt(0.16 * 0.84 / n)
    np.testing.assert_array_equal(masks, image_transforms.sample_masks([7, 8], n).numpy())
    assert not np.array_equal(masks, image_transforms.sample_masks([7, 9], n).numpy())
    ones = image_transforms.sample_masks([1, 2], 100, p_jitter=1.0, p_gray=0.0).numpy()
    np.testing.assert_array_equal(ones, np.tile([[1.0, 0.0]], (100, 1)))


@pytest.mark.parametrize("strength", [0.5, 1.0])
def test_jitter_params_within_ranges(strength):
    n = 20000
    params = image_transforms.sample_jitter_params([5, 6], [n // 10, 10], strength).numpy()
    assert params.shape == (n // 10, 10, 4) and params.dtype == np.float32
    params = params.reshape(n, 4)
    lo = np.array([1 - 0.8 * strength] * 3 + [-0.2 * strength])
    hi = np.array([1 + 0.8 * strength] * 3 + [0.2 * strength])
    assert np.all(params >= lo - 1e-6) and np.all(params <= hi + 1e-6)
    # Uniform: each component fills its range with the right mean and variance.
    np.testing.assert_allclose(params.min(0), lo, atol=(hi - lo).max() * 1e-3)
    np.testing.assert_allclose(params.max(0), hi, atol=(hi - lo).max() * 1e-3)
    assert np.all(np.abs(params.mean(0) - (lo + hi) / 2)
                  < 4.5 * (hi - lo) / math.sqrt(12 * n))
    np.testing.assert_allclose(params.var(0), color.jitter_param_variance(strength).numpy(),
                               rtol=0.05)


def test_prior_variance():
    variance = color.jitter_param_variance(0.5).numpy()
    np.testing.assert_allclose(variance, [0.64 / 12] * 3 + [0.04 / 12], rtol=1e-6)
    assert variance.mean() == pytest.approx(0.0408, abs=1e-4)
    # Above s = 1.25 the factors' lower end is clipped at 0, as torchvision does.
    assert color.jitter_ranges(2.0)[0] == (0.0, 2.6)


@pytest.mark.parametrize("images, params, match", [
    (np.zeros((2, 2, 3)), np.ones((2, 4)), "images"),
    (np.zeros((2, 2, 2, 4)), np.ones((2, 4)), "images"),
    (np.zeros((2, 2, 2, 3), np.uint8), np.ones((2, 4)), "images"),
    (np.zeros((2, 2, 2, 3)), np.ones((2, 3)), "params"),
    (np.zeros((2, 2, 2, 3)), np.ones((2,)), "params"),
    (np.zeros((2, 2, 2, 3)), np.ones((3, 4)), "params"),
])
def test_jitter_rejects_bad_shapes(images, params, match):
    with pytest.raises(ValueError, match=match):
        color.jitter(images, params)


def test_other_validation():
    images = np.zeros((2, 2, 2, 3))
    with pytest.raises(ValueError, match="masks"):
        color.random_color(images, np.ones((2, 4)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="images"):
        color.grayscale(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="p_jitter"):
        image_transforms.sample_masks([1, 2], 4, p_jitter=1.5)
    with pytest.raises(ValueError, match="strength"):
        image_transforms.sample_jitter_params([1, 2], [4], strength=-0.1)


def test_jitter_in_tf_function_with_unknown_shapes():
    fn = tf.function(color.jitter, input_signature=[tf.TensorSpec(None, tf.float32)] * 2)
    images = np.random.default_rng(4).uniform(size=(2, 3, 3, 3)).astype(np.float32)
    params = np.array([[1.2, 0.8, 1.1, 0.05], [0.7, 1.3, 0.9, -0.08]], np.float32)
    np.testing.assert_allclose(fn(images, params), reference_jitter(images, params), atol=2e-6)
    with pytest.raises(tf.errors.InvalidArgumentError):
        fn(images[..., :2], params)


def test_cifar_transform_apply_and_sampling():
    transform = image_transforms.ImageTransform(image_transforms.CIFAR100_MEAN, image_transforms.CIFAR100_STD, strength=1.0)
    assert (transform.num_params, transform.num_aux) == (4, 2)
    alpha = transform.sample_params([1, 2], [5])
    aux = transform.sample_aux([3, 4], 5)
    assert alpha.shape == (5, 4) and aux.shape == (5, 2)
    np.testing.assert_array_equal(alpha, image_transforms.sample_jitter_params([1, 2], [5], 1.0))
    np.testing.assert_array_equal(aux, image_transforms.sample_masks([3, 4], 5))
    np.testing.assert_allclose(transform.param_variance(), color.jitter_param_variance(1.0))

    images = np.random.default_rng(5).uniform(size=(5, 4, 4, 3)).astype(np.float32)
    expected = ((color.random_color(images, alpha, aux).numpy() - np.array(image_transforms.CIFAR100_MEAN))
                / np.array(image_transforms.CIFAR100_STD))
    out = transform.apply(tf.constant(images), alpha, aux)
    assert out.dtype == tf.float32
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_cifar_transform_validation():
    with pytest.raises(ValueError, match="mean"):
        image_transforms.ImageTransform((0.5, 0.5), image_transforms.CIFAR10_STD)
    with pytest.raises(ValueError, match="std"):
        image_transforms.ImageTransform(image_transforms.CIFAR10_MEAN, (0.2, 0.0, 0.2))
    with pytest.raises(ValueError, match="p_gray"):
        image_transforms.ImageTransform(image_transforms.CIFAR10_MEAN, image_transforms.CIFAR10_STD, p_gray=-0.1)
    with pytest.raises(ValueError, match="strength"):
        image_transforms.ImageTransform(image_transforms.CIFAR10_MEAN, image_transforms.CIFAR10_STD, strength=-1.0)
