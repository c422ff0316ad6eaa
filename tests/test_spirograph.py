"""Tests of the Spirograph renderer, samplers and transformation (SPEC §3)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from invcl_tf.transforms import spirograph as sp
from tests.numpy_references import naive_render

GRID = np.linspace(-6.0, 6.0, 32)
# The grid points nearest to 0 are ±6/31 (32 points, step 12/31).
V0 = 6.0 / 31.0


def random_params(n, seed):
    rng = np.random.default_rng(seed)
    targets = np.stack([rng.uniform(lo, hi, n) for lo, hi in sp.TARGET_RANGES], -1)
    nuisance = np.stack([rng.uniform(lo, hi, n) for lo, hi in sp.NUISANCE_RANGES], -1)
    return targets.astype(np.float32), nuisance.astype(np.float32)


def degenerate_params(sigma, fore=(1.0, 1.0, 1.0), back=(0.0, 0.0, 0.0)):
    """m = h = 2.5 (both in range) makes a − b = 0: all 40 points sit at (x, y) = (h, 0)."""
    targets = np.array([[2.5, 0.5, sigma, fore[0]]], np.float32)
    nuisance = np.array([[2.5, back[0], fore[1], back[1], fore[2], back[2]]], np.float32)
    return targets, nuisance


def test_render_matches_naive_reference():
    targets, nuisance = random_params(6, seed=0)
    for normalize in ("row", "image"):
        got = sp.render(targets, nuisance, normalize=normalize).numpy()
        assert got.shape == (6, 32, 32, 3) and got.dtype == np.float32
        # 1e-5 is exceeded only through float32 phase rounding: t (a − b)/b nears 280 rad when
        # b is small.
        np.testing.assert_allclose(got, naive_render(targets, nuisance, normalize), atol=3e-5)


def test_render_float64_matches_naive_reference_tightly():
    targets, nuisance = random_params(4, seed=1)
    got = sp.render(tf.constant(targets, tf.float64), tf.constant(nuisance, tf.float64))
    assert got.dtype == tf.float64
    np.testing.assert_allclose(got.numpy(), naive_render(targets, nuisance), atol=1e-10)


def test_single_gaussian_closed_form_row_normalised():
    # Intensity is exp(−((u−h)² + v²)/σ) and each row's max sits at v = ±V0, so row u becomes
    # exp(−(v² − V0²)/σ) · g(u)/(g(u) + 1e-8), g(u) = exp(−((u−h)² + V0²)/σ): the same profile
    # on every row, scaled down only where g(u) nears the normaliser's 1e-8.
    sigma, h = 1.0, 2.5
    image = sp.render(*degenerate_params(sigma)).numpy()[0, ..., 0]
    profile = np.exp(-(GRID**2 - V0**2) / sigma)
    g = np.exp(-((GRID - h) ** 2 + V0**2) / sigma)
    np.testing.assert_allclose(image, (g / (g + 1e-8))[:, None] * profile, atol=1e-6)
    live = g > 1e-4
    assert live.sum() >= 10
    np.testing.assert_allclose(image[live], np.tile(profile, (live.sum(), 1)), atol=1e-4)
    # By hand: v_20 = 54/31, so i(u, v_20) = exp(−(54² − 6²)/31²) = exp(−2880/961)
    # ≈ 0.04995.
    assert image[16, 20] == pytest.approx(math.exp(-2880.0 / 961.0), abs=1e-6)
    assert image[16, 20] == pytest.approx(0.04995, abs=1e-5)
    # Row 22 is the row nearest x_0 = (a − b) + h = 2.5; columns 15/16 (v = ∓V0) hold its max.
    assert image[22, 15] == pytest.approx(1.0, abs=1e-6)
    assert image[22, 16] == pytest.approx(1.0, abs=1e-6)


def test_row_normalisation_is_not_whole_image_normalisation():
    sigma = 1.0
    targets, nuisance = degenerate_params(sigma)
    # Before normalisation row 22 (u = 78/31, nearest to h = 2.5) peaks at exp(−(78/31 − 2.5)²
    # − V0²) ≈ 0.96, row 16 (u = 6/31) at exp(−(6/31 − 2.5)² − V0²) ≈ 0.0047: 200× smaller.
    def peak(u):
        return math.exp(-((u - 2.5) ** 2 + V0**2) / sigma)

    assert peak(6 / 31) < peak(78 / 31) / 100
    row_image = sp.render(targets, nuisance, normalize="row").numpy()[0, ..., 0]
    assert row_image[16].max() == pytest.approx(1.0, abs=1e-5)
    assert row_image[22].max() == pytest.approx(1.0, abs=1e-5)
    whole = sp.render(targets, nuisance, normalize="image").numpy()[0, ..., 0]
    assert whole[22].max() == pytest.approx(1.0, abs=1e-5)
    assert whole[16].max() == pytest.approx(peak(6 / 31) / peak(78 / 31), rel=1e-4)
    assert np.abs(whole - row_image).max() > 0.5


def test_every_row_max_is_one_for_random_images():
    targets, nuisance = random_params(16, seed=2)
    # White on black makes the image equal to the intensity itself.
    targets[:, 3] = 1.0
    nuisance[:, 1:] = [0.0, 1.0, 0.0, 1.0, 0.0]
    intensity = sp.render(targets, nuisance).numpy()[..., 0]
    raw_row_max = naive_render(targets, nuisance, normalize=None)[..., 0].max(axis=2)
    # Rows whose unnormalised max dwarfs the 1e-8 of the normaliser must reach 1.
    live = raw_row_max > 1e-3
    assert live.sum() > 100
    assert raw_row_max[live].min() < 0.1 * raw_row_max[live].max()  # maxima really differ
    np.testing.assert_allclose(intensity.max(axis=2)[live], 1.0, atol=1e-4)
    assert (intensity >= 0).all() and (intensity <= 1).all()


def test_colour_mixing():
    fore, back = (0.9, 0.7, 0.5), (0.1, 0.3, 0.2)
    image = sp.render(*degenerate_params(0.25, fore, back)).numpy()[0]
    # i ≈ 1 at the row max (row 22, column 16); i = 0 exactly on row 0, where
    # exp(−(6 + 2.5)²/0.25) underflows.
    np.testing.assert_allclose(image[22, 16], fore, atol=1e-6)
    np.testing.assert_array_equal(image[0, 5], np.float32(back))
    i = math.exp(-((54 / 31) ** 2 - V0**2) / 0.25)
    np.testing.assert_allclose(
        image[22, 20], [i * f + (1 - i) * k for f, k in zip(fore, back)], atol=1e-6
    )


def test_gradients_match_central_differences_in_float64():
    targets, nuisance = (tf.constant(v, tf.float64) for v in random_params(3, seed=3))
    weights = tf.constant(np.random.default_rng(4).normal(size=(3, 32, 32, 3)), tf.float64)

    def per_image_loss(t, n):
        return tf.reduce_sum(weights * sp.render(t, n), axis=[1, 2, 3])

    with tf.GradientTape() as tape:
        tape.watch([targets, nuisance])
        loss = tf.reduce_sum(per_image_loss(targets, nuisance))
    grad_t, grad_n = tape.gradient(loss, [targets, nuisance])

    eps = 1e-6
    for which, (value, grad) in enumerate([(targets, grad_t), (nuisance, grad_n)]):
        for k in range(value.shape[1]):
            # Images are independent, so one perturbation of column k serves the whole batch.
            delta = tf.one_hot(tf.fill([3], k), value.shape[1], dtype=tf.float64) * eps
            args_plus, args_minus = [targets, nuisance], [targets, nuisance]
            args_plus[which], args_minus[which] = value + delta, value - delta
            fd = (per_image_loss(*args_plus) - per_image_loss(*args_minus)) / (2 * eps)
            np.testing.assert_allclose(grad[:, k].numpy(), fd.numpy(), rtol=1e-5, atol=1e-6)
    assert np.all(np.abs(grad_n.numpy()) > 0) and np.all(np.abs(grad_t.numpy()) > 0)


def test_float32_gradients_are_finite_and_nonzero():
    targets, nuisance = (tf.constant(v) for v in random_params(8, seed=5))
    with tf.GradientTape() as tape:
        tape.watch([targets, nuisance])
        image = sp.render(targets, nuisance)
    grads = tape.gradient(image, [targets, nuisance])
    for g in grads:
        assert g.dtype == tf.float32 and np.isfinite(g.numpy()).all()
        assert np.all(np.abs(g.numpy()).sum(axis=0) > 0)


def test_bad_arguments_raise_value_error_naming_them():
    targets, nuisance = random_params(2, seed=6)
    with pytest.raises(ValueError, match="targets.*\\[B, 4\\]"):
        sp.render(targets[:, :3], nuisance)
    with pytest.raises(ValueError, match="targets"):
        sp.render(targets[0], nuisance)
    with pytest.raises(ValueError, match="nuisance.*\\[B, 6 or 9\\]"):
        sp.render(targets, nuisance[:, :5])
    with pytest.raises(ValueError, match="batch size"):
        sp.render(targets, nuisance[:1])
    with pytest.raises(ValueError, match="normalize"):
        sp.render(targets, nuisance, normalize="column")
    with pytest.raises(ValueError, match="normalize"):
        sp.SpirographTransform(normalize=None)
    with pytest.raises(ValueError, match="ranges"):
        sp.SpirographTransform(ranges=sp.NUISANCE_RANGES[:5])
    with pytest.raises(ValueError, match="ranges"):
        sp.SpirographTransform(ranges=((1.0, 0.5),) + sp.NUISANCE_RANGES[1:])
    with pytest.raises(ValueError, match="names"):
        sp.shifted_ranges(sp.NUISANCE_RANGES, ["h", "m"], shift=0.1)
    with pytest.raises(ValueError, match="widen"):
        sp.shifted_ranges(sp.NUISANCE_RANGES, ["rback"], widen=-0.5)


def test_sample_targets_deterministic_and_in_range():
    a = sp.sample_targets(tf.constant([1, 2]), 4000).numpy()
    b = sp.sample_targets(tf.constant([1, 2]), 4000).numpy()
    c = sp.sample_targets(tf.constant([1, 3]), 4000).numpy()
    assert a.shape == (4000, 4) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    lo, hi = np.array(sp.TARGET_RANGES).T
    assert (a >= lo).all() and (a <= hi).all()
    # Each column fills its own range (catches a column/range mix-up).
    np.testing.assert_allclose(a.min(0), lo, atol=0.01 * (hi - lo).max())
    np.testing.assert_allclose(a.max(0), hi, atol=0.01 * (hi - lo).max())


def test_sample_nuisance_shapes_and_ranges():
    ranges = sp.shifted_ranges(sp.NUISANCE_RANGES, ["h", "gback"], shift=0.3, widen=0.1)
    assert ranges[0] == pytest.approx((0.7, 2.9)) and ranges[3] == pytest.approx((0.2, 1.0))
    assert ranges[1] == sp.NUISANCE_RANGES[1]
    transform = sp.SpirographTransform(ranges=ranges)
    alpha = transform.sample_params(tf.constant([5, 6]), [50, 80]).numpy()
    assert alpha.shape == (50, 80, 6) and alpha.dtype == np.float32
    lo, hi = np.array(ranges).T
    assert (alpha >= lo).all() and (alpha <= hi).all()
    flat = alpha.reshape(-1, 6)
    np.testing.assert_allclose(flat.min(0), lo, atol=0.01)
    np.testing.assert_allclose(flat.max(0), hi, atol=0.01)
    default = sp.sample_nuisance(tf.constant([5, 6]), [7]).numpy()
    assert default.shape == (7, 6)
    np.testing.assert_array_equal(default, sp.sample_nuisance(tf.constant([5, 6]), [7]).numpy())


def test_transform_interface_and_param_variance():
    transform = sp.SpirographTransform()
    assert transform.num_params == 6 and transform.num_aux == 0
    variance = transform.param_variance().numpy()
    # h: 2²/12; the five colours: 0.6²/12 each.
    np.testing.assert_allclose(variance, [4 / 12] + [0.36 / 12] * 5, rtol=1e-6)
    assert variance.mean() == pytest.approx(0.0807, abs=2e-4)
    shifted = sp.SpirographTransform(ranges=sp.shifted_ranges(sp.NUISANCE_RANGES, "h", widen=0.5))
    assert shifted.param_variance().numpy()[0] == pytest.approx(9 / 12)
    targets, nuisance = random_params(3, seed=7)
    assert transform.prepare_view(targets, tf.constant([0, 0])) is targets
    assert transform.sample_aux(tf.constant([0, 0]), 3).shape == (3, 0)
    np.testing.assert_array_equal(
        transform.apply(targets, nuisance, None).numpy(), sp.render(targets, nuisance).numpy()
    )
    whole = sp.SpirographTransform(normalize="image").apply(targets, nuisance, None).numpy()
    np.testing.assert_array_equal(whole, sp.render(targets, nuisance, "image").numpy())


@pytest.mark.parametrize("jit_compile", [False, True])
def test_render_in_tf_function_with_unknown_batch(jit_compile):
    targets, nuisance = random_params(5, seed=8)
    expected = naive_render(targets, nuisance)
    spec = [tf.TensorSpec([None, 4], tf.float32), tf.TensorSpec([None, 6], tf.float32)]
    fn = tf.function(sp.render, input_signature=spec, jit_compile=jit_compile)
    for n in (5, 2):
        np.testing.assert_allclose(fn(targets[:n], nuisance[:n]).numpy(), expected[:n], atol=3e-5)
    unknown_rank = tf.function(
        sp.render, input_signature=[tf.TensorSpec(None, tf.float32)] * 2, jit_compile=jit_compile
    )
    np.testing.assert_allclose(unknown_rank(targets, nuisance).numpy(), expected, atol=3e-5)


def test_sampling_and_render_inside_tf_function():
    transform = sp.SpirographTransform()

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
    def views(x):
        alpha = transform.sample_params(tf.constant([3, 4]), [tf.shape(x)[0]])
        return transform.apply(x, alpha, None)

    x = sp.sample_targets(tf.constant([0, 1]), 9)
    eager = transform.apply(x, transform.sample_params(tf.constant([3, 4]), [9]), None)
    np.testing.assert_allclose(views(x).numpy(), eager.numpy(), atol=1e-6)


# ---------------------------------------------------------------------------------------------
# The geometric variant: the curve rotated and shifted before it is drawn


def _geometric(nuisance, rotation=0.0, shift_x=0.0, shift_y=0.0):
    extra = np.broadcast_to([rotation, shift_x, shift_y], (len(nuisance), 3))
    return np.concatenate([np.asarray(nuisance, np.float64), extra], axis=1)


def test_zero_rotation_and_shift_draw_the_plain_image():
    targets, nuisance = random_params(4, seed=11)
    np.testing.assert_array_equal(sp.render(targets, _geometric(nuisance)),
                                  sp.render(targets, nuisance))


def test_a_quarter_turn_turns_the_image():
    # (x, y) -> (−y, x): the intensity at grid (u, v) becomes that at (v, −u), i.e. pixel
    # [u, v] of the turned image is pixel [v, 31 − u] of the plain one (image-wide maximum, so
    # the normalisation is the same for both).
    targets, nuisance = random_params(3, seed=12)
    plain = sp.render(targets, nuisance, normalize="image").numpy()
    turned = sp.render(targets, _geometric(nuisance, rotation=np.pi / 2),
                       normalize="image").numpy()
    np.testing.assert_allclose(turned, np.transpose(plain, (0, 2, 1, 3))[:, ::-1], atol=1e-5)


def test_a_shift_by_one_grid_step_moves_the_image_one_pixel():
    step = 2 * sp.GRID_EXTENT / (sp.IMAGE_SIZE - 1)
    targets = tf.constant([[2.0, 0.5, 0.3, 0.8]], tf.float64)  # a small curve: radius ≤ 2
    nuisance = tf.constant([[0.6, 0.1, 0.7, 0.2, 0.9, 0.3]], tf.float64)
    plain = sp.render(targets, nuisance, normalize="image").numpy()
    moved = sp.render(targets, tf.constant(_geometric(nuisance.numpy(), shift_x=step)),
                      normalize="image").numpy()
    np.testing.assert_allclose(moved[:, 1:], plain[:, :-1], atol=1e-9)


def test_geometric_nuisance_gradient_against_finite_differences():
    targets, nuisance = random_params(2, seed=13)
    targets = tf.constant(targets, tf.float64)
    alpha = tf.constant(_geometric(nuisance, 0.4, 0.3, -0.2))
    weights = tf.constant(np.random.default_rng(3).normal(size=(2, 32, 32, 3)))

    def value(a):
        return tf.reduce_sum(sp.render(targets, a) * weights)

    with tf.GradientTape() as tape:
        tape.watch(alpha)
        total = value(alpha)
    grad = tape.gradient(total, alpha).numpy()[:, 6:]
    numeric = np.zeros_like(grad)
    for b in range(2):
        for k in range(3):
            step = np.zeros(alpha.shape)
            step[b, 6 + k] = 1e-6
            numeric[b, k] = (value(alpha + step) - value(alpha - step)) / 2e-6
    assert np.abs(grad).min() > 1e-3
    np.testing.assert_allclose(grad, numeric, rtol=1e-5)


def test_geometric_ranges_transform_and_sweeps():
    ranges = sp.geometric_ranges(rotation=90, shift=0.1)
    transform = sp.SpirographTransform(ranges)
    assert transform.num_params == 9 and transform.names[6:] == sp.GEOMETRIC_NAMES
    alpha = transform.sample_params(tf.constant([1, 2]), [4000]).numpy()
    assert np.abs(alpha[:, 6]).max() <= np.pi / 2 and np.abs(alpha[:, 6]).max() > 1.5
    assert np.abs(alpha[:, 7:]).max() <= 1.2 + 1e-6  # 0.1 of the 12-unit side
    np.testing.assert_allclose(transform.param_variance()[6:],
                               [np.pi ** 2 / 12, 2.4 ** 2 / 12, 2.4 ** 2 / 12], rtol=1e-6)
    widened = sp.shifted_ranges(ranges, ["rotation"], widen=0.5)
    assert widened[6] == pytest.approx((-np.pi / 2 - 0.5, np.pi / 2 + 0.5))
