"""Robustness sweeps: the shifted nuisance ranges and colour strengths SPEC §5 asks for."""

import math

import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from invcl_tf.data import sources
from invcl_tf.transforms import spirograph
from invcl_tf.transforms import images as image_transforms


def _bundle(transform, task):
    empty = np.zeros((0,))
    return sources.DataBundle(empty, empty, empty, empty, transform, task, ())


def _config(values, rotations=(), shifts=()):
    return ml_collections.ConfigDict({"eval": {"robustness_values": values,
                                               "rotation_values": rotations,
                                               "shift_values": shifts}})


def test_spirograph_sweeps_shift_and_widen_background_and_h():
    sweeps = sources.robustness_sweeps(
        _bundle(spirograph.SpirographTransform(), "regression"), _config((0.0, 0.5), (90.0,)))
    assert set(sweeps) == {"background_shift", "background_widen", "h_shift", "h_widen"}
    (v0, base), (v1, shifted) = sweeps["h_shift"]
    assert (v0, v1) == (0.0, 0.5)
    assert base.ranges == spirograph.NUISANCE_RANGES
    assert shifted.ranges[0] == pytest.approx((1.0, 3.0))
    assert shifted.ranges[1:] == spirograph.NUISANCE_RANGES[1:]
    widened = sweeps["background_widen"][1][1].ranges
    for name, (lo, hi) in zip(spirograph.NUISANCE_NAMES, widened):
        original = dict(zip(spirograph.NUISANCE_NAMES, spirograph.NUISANCE_RANGES))[name]
        expected = (original[0] - 0.5, original[1] + 0.5) if name.endswith("back") else original
        assert (lo, hi) == pytest.approx(expected)


def test_cifar_sweep_always_jitters_at_each_strength_without_crop_or_gray():
    transform = image_transforms.ImageTransform(image_transforms.CIFAR10_MEAN, image_transforms.CIFAR10_STD)
    sweeps = sources.robustness_sweeps(_bundle(transform, "classification"),
                                        _config((0.0, 0.875)))
    (_, zero), (value, strong) = sweeps["color_strength"]
    assert value == 0.875 and strong.strength == 0.875 and zero.strength == 0.0
    for t in (zero, strong):
        assert t.p_jitter == 1.0 and t.p_gray == 0.0 and not t.crop and not t.flip
    np.testing.assert_allclose(strong.sample_aux([0, 1], 64).numpy()[:, 0], 1.0)
    assert set(sweeps) == {"color_strength"}  # no geometric values, no geometric sweeps


def _view(transform, images, seed):
    x = transform.prepare_view(images, seed)
    alpha = transform.sample_params(seed, [images.shape[0]])
    return transform.apply(x, alpha, transform.sample_aux(seed, images.shape[0])), alpha


@pytest.mark.parametrize("covers", ["color", "color+geometry"])
def test_image_sweeps_rotate_and_shift_the_whole_image_and_nothing_else(covers):
    mean, std = image_transforms.CIFAR10_MEAN, image_transforms.CIFAR10_STD
    transform = image_transforms.ImageTransform(mean, std)
    if covers == "color+geometry":  # a run that penalised geometry: α starts with the crop
        transform = sources._image_transform(ml_collections.ConfigDict({
            "gp": {"covers": covers}, "dataset": {"color_strength": 0.5, "image_size": 32,
                                                  "rotation": 30.0, "shift": 0.1}}),
            mean, std, 32)
    sweeps = sources.robustness_sweeps(_bundle(transform, "classification"),
                                       _config((0.0,), (0.0, 90.0), (0.0, 0.25)))
    assert set(sweeps) == {"color_strength", "rotation", "shift"}
    assert [v for v, _ in sweeps["rotation"]] == [0.0, 90.0]
    images = tf.constant(np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3)), tf.uint8)
    seed = tf.constant([3, 4], tf.int64)
    normalised = (images.numpy() / 255.0 - np.array(mean)) / np.array(std)
    # At v = 0 both sweeps give the untransformed, normalised image.
    for name in ("rotation", "shift"):
        out, alpha = _view(sweeps[name][0][1], images, seed)
        assert alpha.shape == (6, 0 + 4)  # no geometric parameters; the colour's, masked off
        np.testing.assert_allclose(out, normalised, atol=1e-4)  # float32 sample positions
    # At 90°: angles within ±π/2, and a quarter turn exactly (a pixel-centre permutation).
    rotate = sweeps["rotation"][1][1]
    angles = _view(rotate, images, seed)[1].numpy()[:, 0]
    assert np.all(np.abs(angles) <= math.pi / 2) and np.ptp(angles) > 0
    quarter = tf.concat([tf.fill([6, 1], math.pi / 2), tf.zeros([6, 4])], axis=1)
    out = rotate.apply(rotate.prepare_view(images, seed), quarter, tf.zeros([6, 3])).numpy()
    rows, cols = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    np.testing.assert_allclose(out, normalised[:, 31 - cols, rows], atol=1e-4)
    # Shifts within ±0.25 of the side, no colour, crop or flip: pixels only move.
    move = sweeps["shift"][1][1]
    out, alpha = _view(move, images, seed)
    assert alpha.shape == (6, 2 + 4) and np.all(np.abs(alpha.numpy()[:, :2]) <= 0.25)
    assert out.numpy().min() >= normalised.min() - 1e-5
    assert out.numpy().max() <= normalised.max() + 1e-5


def test_prefixes_of_prefixes_keep_the_shorter_length():
    # Evaluation slices batches out of a probe split that is itself a prefix.
    targets = sources.GeneratedTargets(0, 256)[:102]
    assert len(targets[0:128]) == 102 and len(targets[:50]) == 50
    np.testing.assert_array_equal(np.asarray(targets[0:128]), np.asarray(targets))
    np.testing.assert_array_equal(targets[100:],
                                  np.asarray(sources.GeneratedTargets(0, 256))[100:102])

    class Split:
        def __init__(self, indices):
            self.indices = np.asarray(indices)
            self.num_examples = len(self.indices)

        def subset(self, indices):
            return Split(self.indices[indices])

    images = sources.StreamedImages(Split(np.arange(256)))[:102]
    assert len(images[0:128]) == 102 and len(images[:50]) == 50
    np.testing.assert_array_equal(images[:50].split.indices, np.arange(50))
    picked = images[np.array([3, 7, 101])]
    np.testing.assert_array_equal(picked.split.indices, [3, 7, 101])
    np.testing.assert_array_equal(picked[np.array([1, 2])].split.indices, [7, 101])
    for bad in (np.array([7, 3]), np.array([3, 3]), np.array([[1]])):
        with pytest.raises(TypeError):
            images[bad]
    with pytest.raises(IndexError):
        images[np.array([5, 102])]


def test_sweeps_in_the_same_units_share_a_plot_axis(tmp_path):
    from invcl_tf import results_io

    spirograph_names = ["background_shift", "h_widen", "rotation_shift", "shift_widen"]
    axes = results_io.sweep_axes(["shift", "color_strength", "rotation"] + spirograph_names)
    assert axes == {"colour jitter strength": ["color_strength"],
                    "rotation range ±v (degrees)": ["rotation"],
                    "shift range ±v (fraction of the side)": ["shift"],
                    "background colour ranges (rback, gback, bback; trained on U(0, 0.6)): "
                    "shift / widening v, colour units": ["background_shift"],
                    "range of h (the pen's offset that shapes the curve; trained on "
                    "U(0.5, 2.5)): shift / widening v": ["h_widen"],
                    "rotation range: shift / widening (radians)": ["rotation_shift"],
                    "shift ranges: shift / widening (grid units)": ["shift_widen"]}
    found = {name: [{"value": v, "accuracy": 0.5 - v / 400} for v in (0.0, 90.0)]
             for name in ("color_strength", "rotation", "shift")}
    # Into a directory that does not exist yet (invcl-evaluate --output_dir=NEW).
    _, plot = results_io.write_robustness(found, str(tmp_path / "new" / "dir"))
    assert (tmp_path / "new" / "dir" / "robustness.png").stat().st_size > 0
    assert plot.endswith(".png")
