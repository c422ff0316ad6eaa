"""Evaluation of a frozen encoder (SPEC §5): feature-averaged linear probes and invariance.

Every draw is keyed on (seed, split, pass, batch), so the same config gives the same numbers.
"""

import math

import numpy as np
import tensorflow as tf

from invcl_tf import probe, variance
from invcl_tf.data import pipeline
from invcl_tf.penalty import gradient_penalty, rademacher

_PROBE_SPLIT, _TEST_SPLIT, _PENALTY, _MONITOR = 0, 1, 2, 3


class ViewEncoder:
    """Encodes random views of inputs with a frozen encoder (inference-mode batch norm)."""

    def __init__(self, encoder, transform, batch_size):
        self.encoder = encoder
        self.transform = transform
        self.batch_size = int(batch_size)
        self._encode = tf.function(self._encode_batch, reduce_retracing=True)

    def _encode_batch(self, x, seed):
        x, alpha, aux = pipeline.random_view(self.transform, x, seed)
        h = self.encoder(self.transform.apply(x, alpha, aux), training=False)
        return tf.cast(h, tf.float32), alpha

    def encode(self, x, seed):
        """Representations ``[N, D]`` and parameters ``[N, K]`` of one random view of each input."""
        hs, alphas = [], []
        for i, start in enumerate(range(0, len(x), self.batch_size)):
            h, alpha = self._encode(tf.convert_to_tensor(x[start:start + self.batch_size]),
                                    pipeline.fold(seed, i))
            hs.append(h.numpy())
            alphas.append(alpha.numpy())
        return np.concatenate(hs), np.concatenate(alphas)


def feature_averaged_probe(view_encoder, probe_x, probe_y, test_x, test_y, num_passes, l2, seed,
                           keep_test_passes=0):
    """Ridge-probe test MSE with features averaged over M views, for each M in ``num_passes``.

    The average over M reuses the first M views, so all M cost ``max(num_passes)`` passes.
    Returns ``(mse, mse_per_column, first)``: dicts keyed by M, and the first pass's
    features and parameters plus the first ``keep_test_passes`` passes of test features.
    """
    wanted = sorted({int(m) for m in num_passes})
    probe_sum = test_sum = None
    mse, per_column, kept = {}, {}, []
    first = {}
    for p in range(1, wanted[-1] + 1):
        h_probe, a_probe = view_encoder.encode(probe_x, pipeline.fold(seed, _PROBE_SPLIT, p))
        h_test, a_test = view_encoder.encode(test_x, pipeline.fold(seed, _TEST_SPLIT, p))
        if p == 1:
            first = {"probe_h": h_probe, "probe_alpha": a_probe, "test_h": h_test,
                     "test_alpha": a_test}
            probe_sum, test_sum = h_probe.astype(np.float64), h_test.astype(np.float64)
        else:
            probe_sum += h_probe
            test_sum += h_test
        if p <= keep_test_passes:
            kept.append(h_test)
        if p in wanted:
            fitted = probe.fit_ridge(probe_sum / p, probe_y, l2)
            pred = fitted.predict(test_sum / p)
            mse[p] = probe.mse(pred, test_y)
            per_column[p] = probe.mse_per_column(pred, test_y)
    first["test_passes"] = kept
    return mse, per_column, first


def penalty_estimate(encoder, transform, x, num_extra, normalize, batch_size, seed):
    """The penalty's own estimator, unclipped, averaged over ``x`` (inference mode)."""

    @tf.function(reduce_retracing=True)
    def batch_penalty(xb, batch_seed):
        xb, alpha, aux = pipeline.random_view(transform, xb, batch_seed)
        extra = transform.sample_params(pipeline.fold(batch_seed, 3),
                                        [tf.shape(alpha)[0], num_extra])
        signs = rademacher(pipeline.fold(batch_seed, 4),
                           [tf.shape(alpha)[0], encoder.output_shape[-1]])
        value, _ = gradient_penalty(
            lambda a: encoder(transform.apply(xb, a, aux), training=False), alpha, extra,
            math.inf, normalize, signs)
        return value

    total = 0.0
    for i, start in enumerate(range(0, len(x), batch_size)):
        xb = tf.convert_to_tensor(x[start:start + batch_size])
        total += float(batch_penalty(xb, pipeline.fold(seed, i))) * len(xb)
    return total / len(x)


def quick_probe(encoder, data, config):
    """The in-training monitor: M = 1 probe MSE and conditional variance on small subsets."""
    n = config.eval.monitor_size
    seed = pipeline.fold(config.seed, pipeline.STREAM_EVAL, _MONITOR)
    views = ViewEncoder(encoder, data.transform, config.eval.batch_size)
    test_x = data.test_x[:n]
    mse, _, first = feature_averaged_probe(views, data.train_x[:n], data.train_y[:n], test_x,
                                           data.test_y[:n], [1], config.eval.probe_l2, seed,
                                           keep_test_passes=1)
    second = views.encode(test_x, pipeline.fold(seed, _TEST_SPLIT, 2))[0]
    copies = np.stack([first["test_passes"][0], second])
    return {"probe_mse": mse[1], "conditional_variance": variance.conditional_variance(copies)}


def evaluate(encoder, data, config, num_passes=None):
    """All of SPEC §5 for a regression dataset; returns the ``results.json`` dict."""
    num_passes = sorted({int(m) for m in (num_passes or config.eval.num_passes)})
    n_probe = max(2, int(len(data.train_x) * config.eval.probe_fraction))
    n_test = max(2, int(len(data.test_x) * config.eval.probe_fraction))
    probe_x, probe_y = data.train_x[:n_probe], data.train_y[:n_probe]
    test_x, test_y = data.test_x[:n_test], data.test_y[:n_test]
    seed = pipeline.fold(config.seed, pipeline.STREAM_EVAL)
    views = ViewEncoder(encoder, data.transform, config.eval.batch_size)
    copies = config.eval.variance_copies
    mse, per_column, first = feature_averaged_probe(
        views, probe_x, probe_y, test_x, test_y, num_passes, config.eval.probe_l2, seed,
        keep_test_passes=copies)
    test_passes = first["test_passes"]
    for p in range(len(test_passes) + 1, copies + 1):  # when max(M) < copies
        test_passes.append(views.encode(test_x, pipeline.fold(seed, _TEST_SPLIT, p))[0])
    test_passes = np.stack(test_passes)
    nuisance = probe.fit_ridge(first["probe_h"], first["probe_alpha"], config.eval.nuisance_l2)
    nuisance_pred = nuisance.predict(first["test_h"])
    names = list(data.label_names)
    return {
        "mse": {str(m): mse[m] for m in num_passes},
        "mse_per_target": {str(m): dict(zip(names, map(float, per_column[m])))
                           for m in num_passes},
        "conditional_variance": variance.conditional_variance(test_passes),
        "total_variance": variance.total_variance(test_passes),
        "penalty_estimate": penalty_estimate(
            encoder, data.transform, test_x, config.gp.num_extra, config.gp.normalize,
            config.eval.batch_size, pipeline.fold(seed, _PENALTY)),
        "nuisance_mse": probe.mse(nuisance_pred, first["test_alpha"]),
        "nuisance_mse_baseline": float(np.mean(data.transform.param_variance())),
        "num_probe_train": n_probe,
        "num_test": n_test,
        "num_passes": num_passes,
    }
