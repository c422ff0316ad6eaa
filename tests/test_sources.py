"""Robustness sweeps: the shifted nuisance ranges and colour strengths SPEC §5 asks for."""

import numpy as np
import pytest

from invcl_tf.data import sources
from invcl_tf.transforms import spirograph
from invcl_tf.transforms import images as image_transforms


def _bundle(transform, task):
    empty = np.zeros((0,))
    return sources.DataBundle(empty, empty, empty, empty, transform, task, ())


def test_spirograph_sweeps_shift_and_widen_background_and_h():
    sweeps = sources.robustness_sweeps(
        _bundle(spirograph.SpirographTransform(), "regression"), (0.0, 0.5))
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
    sweeps = sources.robustness_sweeps(_bundle(transform, "classification"), (0.0, 0.875))
    (_, zero), (value, strong) = sweeps["color_strength"]
    assert value == 0.875 and strong.strength == 0.875 and zero.strength == 0.0
    for t in (zero, strong):
        assert t.p_jitter == 1.0 and t.p_gray == 0.0 and not t.crop and not t.flip
    np.testing.assert_allclose(strong.sample_aux([0, 1], 64).numpy()[:, 0], 1.0)


def test_prefixes_of_prefixes_keep_the_shorter_length():
    # Evaluation slices batches out of a probe split that is itself a prefix.
    targets = sources.GeneratedTargets(0, 256)[:102]
    assert len(targets[0:128]) == 102 and len(targets[:50]) == 50
    np.testing.assert_array_equal(np.asarray(targets[0:128]), np.asarray(targets))
    np.testing.assert_array_equal(targets[100:],
                                  np.asarray(sources.GeneratedTargets(0, 256))[100:102])

    class Split:
        num_examples = 256

    images = sources.StreamedImages(Split())[:102]
    assert len(images[0:128]) == 102 and len(images[:50]) == 50
