"""Evaluation of a frozen encoder (SPEC §5): feature-averaged linear probes and invariance.

Every draw is keyed on (seed, split, pass, batch), so the same config gives the same numbers.
"""

import math

import keras
import numpy as np
import tensorflow as tf

from invcl_tf import errors, probe, variance
from invcl_tf.feature_averaging import (
    TEST_SPLIT, ViewEncoder, feature_averaged_scores, input_batches, probe_scores)
from invcl_tf.data import draws, sources, subsets
from invcl_tf.models.rebuild import rebuilt
from invcl_tf.penalty import gradient_penalty, rademacher

# Salts of the other draws, after feature_averaging's PROBE_SPLIT and TEST_SPLIT (0, 1).
_PENALTY, _MONITOR, _VARIANTS = range(2, 5)


def penalty_estimate(encoder, transform, x, num_extra, normalize, batch_size, seed):
    """The penalty's own estimator, unclipped, averaged over ``x`` (inference mode)."""

    def batch_penalty(xb, batch_seed):
        xb, alpha, aux = draws.random_view(transform, xb, batch_seed)
        extra = transform.sample_params(draws.fold(batch_seed, 3),
                                        [tf.shape(alpha)[0], num_extra])
        signs = rademacher(draws.fold(batch_seed, 4),
                           [tf.shape(alpha)[0], encoder.output_shape[-1]])
        value, _ = gradient_penalty(
            lambda a: encoder(transform.apply(xb, a, aux), training=False), alpha, extra,
            math.inf, normalize, signs)
        return value

    # Traced once, the batch dimension left open (as ViewEncoder's graphs): the last, smaller
    # batch reuses it. Straight-line code, so no autograph conversion.
    graph, total, count = None, 0.0, 0
    for i, xb in enumerate(input_batches(x, batch_size)):
        if graph is None:
            first = tf.convert_to_tensor(xb)
            graph = tf.function(batch_penalty, autograph=False).get_concrete_function(
                tf.TensorSpec([None, *first.shape[1:]], first.dtype),
                tf.TensorSpec([2], tf.int64))
        total += float(graph(xb, draws.fold(seed, i))) * len(xb)
        count += len(xb)
    return total / count


def _sizes(data, config):
    """``(probe-train, test)`` sizes of the evaluation's split."""
    return (max(2, int(len(data.train_x) * config.eval.probe_fraction)),
            max(2, int(len(data.test_x) * config.eval.test_fraction)))


def evaluation_split(data, config, size=None, what="evaluation"):
    """The probe-train and test subsets (``probe_x``, ``probe_y``, ``test_x``, ``test_y``)
    the evaluation uses, ``size=(probe, test)`` for the monitor's: the first inputs of
    Spirograph's i.i.d. targets, else drawn per class (``sources.draw_subset``); logs one
    line when the probe's training split misses a class of the test split."""
    n_probe, n_test = size or _sizes(data, config)
    probe_x, probe_y = ((data.train_x, data.train_y) if data.probe_x is None
                        else (data.probe_x, data.probe_y))
    drawn = data.task != "regression"
    salts = (subsets.PROBE, subsets.TEST) if size is None else (subsets.MONITOR_PROBE,
                                                                subsets.MONITOR_TEST)
    probe_x, probe_y = sources.draw_subset(probe_x, probe_y, n_probe, drawn, salts[0])
    test_x, test_y = sources.draw_subset(data.test_x, data.test_y, n_test, drawn, salts[1])
    if data.task == "classification":
        subsets.warn_about_classes(probe_y, test_y, data.label_names, what)
    return {"probe_x": probe_x, "probe_y": probe_y, "test_x": test_x, "test_y": test_y}


def monitor_sizes(data, config, num_features):
    """``(probe, test)`` sizes of the in-training monitor: ``eval.monitor_size`` test inputs,
    and a probe fitted on at least 4 examples a feature, within the evaluation's own sizes.

    A ridge probe with about as many examples as features interpolates, and its test MSE
    blows up (the double-descent peak): fitted on ``monitor_size`` examples of a wide
    representation, the monitor read 100x the evaluation's MSE.
    """
    n_probe, n_test = _sizes(data, config)
    size = config.eval.monitor_size
    return min(n_probe, max(size, 4 * int(num_features))), min(n_test, size)


def _scorer(data, config, split):
    return lambda probe_h, test_h: probe_scores(
        data.task, config.eval.probe_l2, probe_h, split["probe_y"], test_h, split["test_y"],
        data.label_names)


def _policies(model):
    return {layer.dtype_policy.name for layer in model.layers
            if not isinstance(layer, keras.layers.InputLayer)}


def inference_encoder(encoder, precision):
    """``encoder`` computing under the dtype policy ``precision`` (an ``eval.precision``):
    itself when every layer already does, else a copy with its weights. A run trained in
    mixed precision keeps its layers' policies, so without the copy it would be evaluated
    in 16 bits while recorded as float32."""
    if not isinstance(encoder, keras.Model):  # an exported SavedModel computes in float32
        if precision == "float32":
            return encoder
        raise errors.InputError(f"--config.eval.precision={precision} recasts a Keras "
                                "encoder: evaluate the run's --workdir, or use float32")
    if _policies(encoder) == {precision}:
        return encoder
    return rebuilt(encoder, dtype=precision)


def _by_m(scores):
    """{M: {metric: v}} -> {metric: {"M": v}} (M as a string key, for JSON)."""
    metrics = next(iter(scores.values()))
    return {name: {str(m): s[name] for m, s in scores.items()} for name in metrics}


class QuickProbe:
    """The in-training monitor: called with the encoder, the evaluation's M = 1 probe score
    and conditional variance on subsets (``monitor_sizes``), in ``eval.precision`` as the
    evaluation. It keeps its split and its traced view encoder from call to call (a recast
    copy takes the encoder's current weights), so epochs after the first trace nothing."""

    def __init__(self, data, config):
        self.data = data
        self.config = config
        self._split = None
        self._views = None
        self._source = None

    def _view_encoder(self, encoder):
        if self._source is not encoder:
            self._source = encoder
            self._views = ViewEncoder(inference_encoder(encoder, self.config.eval.precision),
                                      self.data.transform, self.config.eval.batch_size)
        elif self._views.encoder is not encoder:
            self._views.encoder.set_weights(encoder.get_weights())
        return self._views

    def __call__(self, encoder):
        data, config = self.data, self.config
        seed = draws.fold(config.seed, draws.STREAM_EVAL, _MONITOR)
        if self._split is None:
            self._split = evaluation_split(
                data, config, monitor_sizes(data, config, encoder.output_shape[-1]),
                what="monitor")
        split = self._split
        views = self._view_encoder(encoder)
        scores, first = feature_averaged_scores(views, split, [1], _scorer(data, config, split),
                                                seed, keep_test_passes=1)
        second = views.encode(split["test_x"], draws.fold(seed, TEST_SPLIT, 2))[0]
        copies = np.stack([first["test_passes"][0], second])
        found = {"conditional_variance": variance.conditional_variance(copies)}
        if data.task != "unlabelled":
            main = "mse" if data.task == "regression" else "accuracy"
            found[f"probe_{main}"] = scores[1][main]
        return found


def evaluate(encoder, data, config, num_passes=None):
    """All of SPEC §5; returns the ``results.json`` dict.

    Regression (Spirograph): ``mse`` and ``mse_per_target`` keyed by M. Classification (CIFAR):
    ``accuracy`` and ``cross_entropy`` keyed by M, plus the same for each of the dataset's
    other evaluation transforms (``untransformed`` at M = 1, ``color_only`` at every M).
    All: conditional and total variance, the penalty estimate and nuisance predictability;
    unlabelled images (a flat folder) have only these.
    """
    num_passes = sorted({int(m) for m in (num_passes or config.eval.num_passes)})
    labelled = data.task != "unlabelled"
    if not labelled:
        num_passes = [1]  # no probe to average for; one pass feeds the nuisance probe
    split = evaluation_split(data, config)
    seed = draws.fold(config.seed, draws.STREAM_EVAL)
    passes_encoder = inference_encoder(encoder, config.eval.precision)
    float_encoder = inference_encoder(encoder, "float32")  # the penalty estimate's, always
    views = ViewEncoder(passes_encoder, data.transform, config.eval.batch_size)
    copies = config.eval.variance_copies
    scores, first = feature_averaged_scores(views, split, num_passes,
                                            _scorer(data, config, split), seed,
                                            keep_test_passes=copies)
    results = _by_m(scores)
    variants = sorted(data.eval_transforms.items()) if labelled else []
    for i, (name, transform) in enumerate(variants):
        passes = [1] if name == "untransformed" else num_passes
        other = ViewEncoder(passes_encoder, transform, config.eval.batch_size)
        variant_scores, _ = feature_averaged_scores(
            other, split, passes, _scorer(data, config, split),
            draws.fold(seed, _VARIANTS, i))
        results[name] = _by_m(variant_scores)
    test_passes = first["test_passes"]
    for p in range(len(test_passes) + 1, copies + 1):  # when max(M) < copies
        test_passes.append(views.encode(split["test_x"], draws.fold(seed, TEST_SPLIT, p))[0])
    test_passes = np.stack(test_passes)
    nuisance = probe.fit_ridge(first["probe_h"], first["probe_alpha"], config.eval.nuisance_l2)
    results.update({
        "conditional_variance": variance.conditional_variance(test_passes),
        "total_variance": variance.total_variance(test_passes),
        "penalty_estimate": penalty_estimate(
            float_encoder, data.transform, split["test_x"], config.gp.num_extra, config.gp.normalize,
            config.eval.batch_size, draws.fold(seed, _PENALTY)),
        "nuisance_mse": probe.mse(nuisance.predict(first["test_h"]), first["test_alpha"]),
        "nuisance_mse_baseline": float(np.mean(data.transform.param_variance())),
        "num_probe_train": len(split["probe_x"]),
        # Spirograph: fresh targets or the pretraining ones (eval.probe_targets); images: a
        # part of the training split, drawn per class.
        "probe_inputs": ("train_split" if data.task != "regression" else
                         "pretraining" if data.probe_x is None else "fresh"),
        "num_test": len(split["test_x"]),
        "num_passes": num_passes,
        "eval_precision": config.eval.precision,
        "task": data.task,
    })
    return results


def robustness(encoder, data, config, sweeps):
    """Refits the probe (M = 1) on views from each shifted transformation of ``sweeps``.

    ``sweeps`` maps a sweep's name to ``[(value, transform), ...]``; returns
    ``{name: [{"value": v, **scores}, ...]}``.
    """
    if data.task == "unlabelled":
        raise errors.InputError("--robustness refits the linear probe, which needs labels: "
                                "give the folder class subfolders")
    split = evaluation_split(data, config)
    # The evaluation's own seed at every point: where a sweep's transformation is the
    # training one (Spirograph at v = 0) its score is results.json's at M = 1, and points
    # that differ only in v differ by the shift, not by their draws.
    seed = draws.fold(config.seed, draws.STREAM_EVAL)
    encoder = inference_encoder(encoder, config.eval.precision)
    found = {}
    for name, points in sorted(sweeps.items()):
        found[name] = []
        for value, transform in points:
            views = ViewEncoder(encoder, transform, config.eval.batch_size)
            scores, _ = feature_averaged_scores(views, split, [1], _scorer(data, config, split),
                                                seed)
            found[name].append({"value": float(value), **scores[1]})
    return found
