"""``gp.expectation=closed_form``: the mean over α′ of ``(G·(α′ − α))²`` replaced by its
expectation ``GᵀΣG + (G·(μ − α))²`` under each transform's declared parameter moments."""

import numpy as np
import pytest
import tensorflow as tf

from invcl_tf import configuration, penalty, pretraining
from invcl_tf.data import draws, pipeline, sources
from invcl_tf.transforms import base, geometry, images, spirograph
from tests.repo_configs import spirograph_cpu


def test_the_closed_form_is_the_mean_over_a_hundred_thousand_draws():
    rng = np.random.default_rng(0)
    transform = spirograph.SpirographTransform(spirograph.geometric_ranges(30.0, 0.1))
    b, k, n = 5, transform.num_params, 100_000
    grad = rng.normal(size=(b, k))
    alpha = np.asarray(transform.sample_params([1, 2], [b]), np.float64)
    # α′ by NumPy, uniform on the ranges: independent of the code under test.
    lo, hi = np.asarray(transform.ranges).T
    extra = lo + (hi - lo) * rng.uniform(size=(b, n, k))
    squares = np.einsum("bk,bnk->bn", grad, extra - alpha[:, None]) ** 2
    mean, cov = transform.param_moments()
    got = np.asarray(penalty.expected_terms(tf.constant(grad), tf.constant(alpha),
                                            tf.constant(mean), tf.constant(cov)))
    error = squares.std(axis=1) / np.sqrt(n)
    assert np.all(np.abs(got - squares.mean(axis=1)) < 4 * error), (got, squares.mean(1), error)
    # And the draws' estimator of the library agrees with its own expectation.
    drawn = np.asarray(penalty.penalty_terms(tf.constant(grad), tf.constant(alpha),
                                             tf.constant(extra)))
    assert np.all(np.abs(got - drawn) < 4 * error)


@pytest.mark.parametrize("transform", [
    spirograph.SpirographTransform(),
    images.ImageTransform((0.5,) * 3, (0.25,) * 3, crop=False),
    base.Composed(geometry.GeometricTransform(40, 32, rotation=10.0, shift=0.1),
                  images.ImageTransform((0.5,) * 3, (0.25,) * 3, crop=False)),
], ids=["spirograph", "jitter", "crop+rotation+shift+jitter"])
def test_declared_moments_match_the_sampled_distribution(transform):
    n = 200_000
    drawn = np.asarray(transform.sample_params(tf.constant([5, 6], tf.int64), [n]), np.float64)
    mean, cov = transform.param_moments()
    assert mean.shape == (transform.num_params,)
    assert cov.shape == (transform.num_params,) * 2
    # Within 5 standard errors of the sample's mean and covariance (bounded parameters: the
    # standard error of a covariance is about σᵢσⱼ/√n).
    scale = np.sqrt(np.diag(cov))
    assert np.all(np.abs(mean - drawn.mean(0)) < 5 * scale / np.sqrt(n))
    assert np.all(np.abs(cov - np.cov(drawn, rowvar=False))
                  < 5 * np.outer(scale, scale) / np.sqrt(n) + 1e-12)


def _model_and_batch(expectation):
    config = spirograph_cpu.get_config("tiny")
    config.gp.expectation = expectation
    data = sources.load(config)
    model = pretraining.build_model(config, data.transform, steps_per_epoch=8)
    batch = next(iter(pipeline.train_dataset(data.train_x, data.transform, 32,
                                             config.gp.num_extra, config.seed, 0, 1)))
    return model, batch


def _gradient(model, batch, seed):
    weights = model.get_weights()
    # Other α′ draws for the same batch, signs and weights.
    batch = dict(batch, alpha_extra=model.transform.sample_params(
        draws.fold(seed, 1), batch["alpha_extra"].shape[:2]))
    _, grads = model.losses_and_gradients(batch)
    model.set_weights(weights)  # undo the batch-norm statistics' update
    return np.concatenate([np.ravel(g) for g in grads])


def test_the_closed_form_gradient_does_not_vary_with_the_draws():
    closed, batch = _model_and_batch("closed_form")
    drawn, _ = _model_and_batch("draws")
    drawn.set_weights(closed.get_weights())
    exact = [_gradient(closed, batch, seed) for seed in range(4)]
    assert all(np.array_equal(g, exact[0]) for g in exact[1:])
    sampled = np.stack([_gradient(drawn, batch, seed) for seed in range(4)])
    spread = sampled.std(0).max() / np.abs(sampled.mean(0)).max()
    assert spread > 1e-4  # N = 8 draws: the gradient moves with them
    # Both estimate the same expected gradient.
    np.testing.assert_allclose(sampled.mean(0), exact[0], atol=4 * sampled.std(0).max())


def test_a_closed_form_run_draws_no_extra_parameters(tmp_path):
    config = spirograph_cpu.get_config("tiny")
    config.gp.expectation = "closed_form"
    config.eval.every_epochs = 0
    config.train.epochs = 1
    assert configuration.extra_draws(config) == 0
    model = pretraining.train(config, str(tmp_path), verbose=0)
    assert model.gp_expectation == "closed_form"
    assert np.isfinite(model.get_weights()[0]).all()
