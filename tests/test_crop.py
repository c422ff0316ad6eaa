"""Tests of the random resized crop, the flip and the CIFAR ``prepare_view``."""

import math

import numpy as np
import pytest
import tensorflow as tf

from invcl_tf.transforms import images as image_transforms
from invcl_tf.transforms import crop


def random_images(shape, seed=0):
    return np.random.default_rng(seed).uniform(size=shape).astype(np.float32)


def boxes_of(seed, n, height, width, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    return crop.sample_crop_boxes(seed, n, height, width, scale, ratio).numpy()


def assert_boxes_consistent(boxes, height, width, scale, ratio):
    """Every box lies in the image and could come from some area in ``scale`` and aspect
    ratio in ``ratio`` after rounding w and h (|w − √(area·r)| ≤ ½, |h − √(area/r)| ≤ ½)."""
    y0, x0, h, w = boxes.T.astype(np.float64)
    assert np.all((y0 >= 0) & (x0 >= 0) & (h >= 1) & (w >= 1))
    assert np.all((y0 + h <= height) & (x0 + w <= width))
    area_lo, area_hi = (w - 0.5) * (h - 0.5), (w + 0.5) * (h + 0.5)
    assert np.all(area_lo <= scale[1] * height * width)
    assert np.all(area_hi >= scale[0] * height * width)
    assert np.all((w - 0.5) / (h + 0.5) <= ratio[1])
    assert np.all((w + 0.5) / (h - 0.5) >= ratio[0])


@pytest.mark.parametrize("height, width, scale, ratio", [
    (32, 32, (0.08, 1.0), (3 / 4, 4 / 3)),
    (40, 64, (0.1, 0.5), (1.5, 3.0)),
])
def test_boxes_within_image_and_bounds(height, width, scale, ratio):
    boxes = boxes_of([1, 2], 5000, height, width, scale, ratio)
    assert boxes.shape == (5000, 4) and boxes.dtype == np.int32
    # The fallback (the full image for both settings) is checked separately.
    sampled = boxes[~np.all(boxes == [0, 0, height, width], axis=1)]
    assert len(sampled) > 4900
    assert_boxes_consistent(sampled, height, width, scale, ratio)


def test_box_distribution_on_a_large_image():
    # On 1000×1000 every candidate fits and rounding is negligible: the area fraction is
    # U(0.05, 0.1) and log(w/h) is U(0, log 4) — not log of U(1, 4), nor with w and h swapped.
    n = 5000
    boxes = boxes_of([3, 4], n, 1000, 1000, (0.05, 0.1), (1.0, 4.0))
    h, w = boxes[:, 2].astype(np.float64), boxes[:, 3].astype(np.float64)
    area = w * h / 1e6
    assert abs(area.mean() - 0.075) < 4.5 * 0.05 / math.sqrt(12 * n) + 1e-4
    log_ratio = np.log(w / h)
    assert abs(log_ratio.mean() - math.log(2.0)) < 4.5 * math.log(4.0) / math.sqrt(12 * n)


def test_offsets_are_uniform_including_both_ends():
    n = 17000
    boxes = boxes_of([5, 6], n, 32, 32, (0.25, 0.25), (1.0, 1.0))
    np.testing.assert_array_equal(boxes[:, 2:], np.full((n, 2), 16))
    for column in (0, 1):
        counts = np.bincount(boxes[:, column], minlength=17)
        assert len(counts) == 17
        p = 1 / 17
        assert np.all(np.abs(counts / n - p) < 4.5 * math.sqrt(p * (1 - p) / n))


@pytest.mark.parametrize("height, width, expected", [
    (32, 32, [0, 0, 32, 32]),
    # Wide: h = 8, w = round(8 · 4/3) = 11, centred at x0 = (32 − 11) // 2.
    (8, 32, [0, 10, 8, 11]),
    # Tall: w = 8, h = round(8 / (3/4)) = 11, centred at y0 = (32 − 11) // 2.
    (32, 8, [10, 0, 11, 8]),
])
def test_fallback_when_nothing_fits(height, width, expected):
    boxes = boxes_of([7, 8], 50, height, width, scale=(2.0, 3.0))
    np.testing.assert_array_equal(boxes, np.tile(expected, (50, 1)))


def test_fallback_rate_matches_ten_tries():
    # Squares of side round(32·√f), f ~ U(0.5, 5.5): a try fits when 32√f ≤ 32.5 and gives the
    # full 32×32 image when 31.5 ≤ 32√f ≤ 32.5. The full image comes either from the fallback
    # (all ten tries fail) or from the first fitting try.
    n = 20000
    boxes = boxes_of([9, 10], n, 32, 32, (0.5, 5.5), (1.0, 1.0))
    p_fit = ((32.5 / 32) ** 2 - 0.5) / 5.0
    p_full_fit = ((32.5 / 32) ** 2 - (31.5 / 32) ** 2) / 5.0
    p_fallback = (1.0 - p_fit) ** 10
    p_full = p_fallback + (1.0 - p_fallback) * p_full_fit / p_fit
    full = np.all(boxes == [0, 0, 32, 32], axis=1).mean()
    assert abs(full - p_full) < 4.5 * math.sqrt(p_full * (1 - p_full) / n)


def test_determinism_per_seed():
    images = random_images((8, 32, 32, 3))
    first = crop.random_resized_crop(images, [11, 12]).numpy()
    np.testing.assert_array_equal(first, crop.random_resized_crop(images, [11, 12]).numpy())
    assert not np.array_equal(first, crop.random_resized_crop(images, [11, 13]).numpy())
    np.testing.assert_array_equal(crop.random_flip(images, [1, 1]), crop.random_flip(images, [1, 1]))


def test_crop_uses_the_sampled_boxes():
    images = random_images((8, 24, 40, 3))
    boxes = crop.sample_crop_boxes([13, 14], 8, 24, 40)
    np.testing.assert_array_equal(crop.random_resized_crop(images, [13, 14], size=20),
                                  crop.resize_crops(images, boxes, 20))


def test_full_image_crop_is_identity():
    images = random_images((4, 32, 32, 3))
    out = crop.random_resized_crop(images, [1, 2], scale=(1.0, 1.0), ratio=(1.0, 1.0))
    assert out.dtype == tf.float32
    np.testing.assert_array_equal(out.numpy(), images)
    as_uint8 = (images * 255).astype(np.uint8)
    out = crop.random_resized_crop(as_uint8, [1, 2], scale=(1.0, 1.0), ratio=(1.0, 1.0))
    np.testing.assert_array_equal(out.numpy(), as_uint8.astype(np.float32))


def reference_resize(patch, size):
    """Bilinear samples at positions i·(n − 1)/(size − 1) of each axis of ``patch`` [n, m, C]."""
    def along(axis_len):
        pos = np.arange(size) * (axis_len - 1) / (size - 1)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, axis_len - 1)
        return lo, hi, pos - lo

    rows_lo, rows_hi, fy = along(patch.shape[0])
    cols_lo, cols_hi, fx = along(patch.shape[1])
    rows = patch[rows_lo] * (1 - fy)[:, None, None] + patch[rows_hi] * fy[:, None, None]
    return rows[:, cols_lo] * (1 - fx)[None, :, None] + rows[:, cols_hi] * fx[None, :, None]


def test_known_box_gives_the_expected_sub_image():
    images = random_images((2, 32, 32, 3), seed=1).astype(np.float64)
    # The second box touches the bottom-right corner, where rounding could step outside.
    boxes = np.array([[5, 9, 16, 16], [16, 16, 16, 16]])
    patches = [images[b, y0:y0 + h, x0:x0 + w] for b, (y0, x0, h, w) in enumerate(boxes)]

    # 16 → 31 is an exact ×2 on the pixel-centre grid: even outputs are the crop's pixels, odd
    # ones the midpoints of neighbours; nothing from outside the crop enters, not even at the
    # borders (the first and last outputs are the crop's corner pixels).
    out = crop.resize_crops(images, boxes, size=31).numpy()
    for b, patch in enumerate(patches):
        np.testing.assert_allclose(out[b, ::2, ::2], patch, atol=1e-6)
        np.testing.assert_allclose(out[b, 1::2, ::2], (patch[:-1] + patch[1:]) / 2, atol=1e-6)
        np.testing.assert_allclose(out[b, ::2, 1::2], (patch[:, :-1] + patch[:, 1:]) / 2,
                                   atol=1e-6)

    # 16 → 32: samples at i·15/31, so only the corners coincide with pixels (the tolerance
    # covers crop_and_resize's float32 sample positions).
    out = crop.resize_crops(images, boxes, size=32).numpy()
    for b, patch in enumerate(patches):
        np.testing.assert_allclose(out[b], reference_resize(patch, 32), atol=5e-6)
        np.testing.assert_allclose(out[b, [0, 0, -1, -1], [0, -1, 0, -1]],
                                   patch[[0, 0, -1, -1], [0, -1, 0, -1]], atol=1e-6)


def test_no_pixel_outside_the_box_contributes():
    # Every box of full width and every height and row offset, with the outside set to 1000.
    boxes = np.array([(y0, 0, h, 32) for h in range(1, 33) for y0 in range(33 - h)])
    images = np.full((len(boxes), 32, 32, 1), 1000.0, np.float32)
    for image, (y0, _, h, _) in zip(images, boxes):
        image[y0:y0 + h] = 0.5
    for transpose in (False, True):
        if transpose:
            images, boxes = images.transpose(0, 2, 1, 3), boxes[:, [1, 0, 3, 2]]
        np.testing.assert_array_equal(crop.resize_crops(images, boxes, 32), 0.5)


def test_flip_probability_and_content():
    n = 20000
    # Each image is the row (0, 1): it reads (1, 0) when flipped.
    images = np.tile(np.array([0.0, 1.0], np.float32)[None, None, :, None], (n, 1, 1, 1))
    flipped = crop.random_flip(images, [3, 5]).numpy()[:, 0, 0, 0] == 1.0
    assert abs(flipped.mean() - 0.5) < 4.5 * math.sqrt(0.25 / n)

    images = random_images((64, 5, 6, 3))
    out = crop.random_flip(images, [3, 5]).numpy()
    is_flipped = np.all(out == images[:, :, ::-1], axis=(1, 2, 3))
    unchanged = np.all(out == images, axis=(1, 2, 3))
    assert np.all(is_flipped ^ unchanged) and 0 < is_flipped.sum() < 64
    np.testing.assert_array_equal(crop.random_flip(images, [3, 5], p=0.0), images)
    np.testing.assert_array_equal(crop.random_flip(images, [3, 5], p=1.0), images[:, :, ::-1])


def test_works_in_tf_function():
    images = random_images((6, 32, 32, 3))
    spec = tf.TensorSpec([None, None, None, 3], tf.float32)

    @tf.function(input_signature=[spec, tf.TensorSpec([2], tf.int64)])
    def augment(x, seed):
        return crop.random_flip(crop.random_resized_crop(x, seed), seed)

    seed = tf.constant([21, 22], tf.int64)
    eager = crop.random_flip(crop.random_resized_crop(images, seed), seed)
    np.testing.assert_array_equal(augment(images, seed), eager)


def test_works_in_tf_data_map():
    images = random_images((12, 32, 32, 3))
    seed = tf.constant([23, 24], tf.int64)
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(4).map(
        lambda x: crop.random_resized_crop(x, seed, size=16))
    batches = list(dataset.as_numpy_iterator())
    assert [b.shape for b in batches] == [(4, 16, 16, 3)] * 3
    np.testing.assert_array_equal(batches[1],
                                  crop.random_resized_crop(images[4:8], seed, size=16))


def test_prepare_view_scales_crops_and_flips():
    transform = image_transforms.ImageTransform(image_transforms.CIFAR10_MEAN, image_transforms.CIFAR10_STD)
    images = (random_images((8, 32, 32, 3), seed=2) * 255).astype(np.uint8)
    seed = tf.constant([31, 32], tf.int64)
    view = transform.prepare_view(images, seed)
    assert view.dtype == tf.float32 and view.shape == (8, 32, 32, 3)
    fold = tf.random.experimental.stateless_fold_in
    expected = crop.random_flip(crop.random_resized_crop(images / 255.0, fold(seed, 0)),
                                fold(seed, 1))
    np.testing.assert_allclose(view, expected, atol=1e-6)

    # Without the crop, each example is the scaled image, flipped or not; in tf.data too.
    no_crop = image_transforms.ImageTransform(image_transforms.CIFAR10_MEAN, image_transforms.CIFAR10_STD, crop=False)
    dataset = tf.data.Dataset.from_tensors(images).map(lambda x: no_crop.prepare_view(x, seed))
    view = next(dataset.as_numpy_iterator())
    scaled = images / np.float32(255.0)
    flipped = np.all(np.isclose(view, scaled[:, :, ::-1]), axis=(1, 2, 3))
    same = np.all(np.isclose(view, scaled), axis=(1, 2, 3))
    assert np.all(flipped | same)


def test_validation():
    with pytest.raises(ValueError, match="scale"):
        crop.sample_crop_boxes([1, 2], 4, 32, 32, scale=(1.0, 0.5))
    with pytest.raises(ValueError, match="ratio"):
        crop.sample_crop_boxes([1, 2], 4, 32, 32, ratio=(0.0, 1.0))
    with pytest.raises(ValueError, match="images"):
        crop.random_resized_crop(np.zeros((32, 32, 3)), [1, 2])
    with pytest.raises(ValueError, match="`p`"):
        crop.random_flip(np.zeros((1, 2, 2, 3)), [1, 2], p=1.5)
