"""Feature averaging: encodings of M random views of every input (``ViewEncoder``), the
linear probe fitted on their averages for each M, and the batches both run over.

Every draw is keyed on (seed, pass, batch), so the same seeds give the same numbers.
"""

import tensorflow as tf

from invcl_tf import probe
from invcl_tf.data import draws

#: Salts of the probe's training inputs' and the test inputs' draws.
PROBE_SPLIT, TEST_SPLIT = range(2)


def input_batches(x, batch_size):
    """``x`` in order, ``batch_size`` at a time: slices of an array, or a streamed split's
    batches (``invcl_tf.data.sources.StreamedImages``), never the whole split at once."""
    if hasattr(x, "batches"):
        return iter(x.batches(batch_size))
    return (tf.convert_to_tensor(x[start:start + batch_size])
            for start in range(0, len(x), batch_size))


class ViewEncoder:
    """Encodes random views of inputs with a frozen encoder (inference-mode batch norm).

    All passes over a batch run in one graph call and their running sum stays on the device
    (float64, as the averages are taken); results leave it once per split, not per batch.
    """

    def __init__(self, encoder, transform, batch_size):
        self.encoder = encoder
        self.transform = transform
        self.batch_size = int(batch_size)
        self._passes = None  # traced at the first call, for any batch size (see _graph)

    def _encode_batch(self, x, seed):
        x, alpha, aux = draws.random_view(self.transform, x, seed)
        h = self.encoder(self.transform.apply(x, alpha, aux), training=False)
        return tf.cast(h, tf.float32), alpha

    def _batch_passes(self, x, pass_seeds, index, wanted, keep):
        # Pass p of batch `index` draws from fold(pass_seeds[p], index), as one pass would.
        # `wanted` (bool [P]) and `keep` (int32) are tensors, not Python values, so one trace
        # serves every evaluation setting (M list, kept passes, number of passes).
        h, alpha = self._encode_batch(x, draws.fold(pass_seeds[0], index))
        first_h, first_alpha = h, alpha
        total = tf.cast(h, tf.float64)
        means = tf.TensorArray(tf.float64, size=0, dynamic_size=True)
        kept = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
        if wanted[0]:
            means = means.write(0, total)
        if keep > 0:
            kept = kept.write(0, h)
        for p in tf.range(1, tf.shape(pass_seeds)[0]):
            h, _ = self._encode_batch(x, draws.fold(pass_seeds[p], index))
            total += tf.cast(h, tf.float64)
            if wanted[p]:
                means = means.write(means.size(), total / tf.cast(p + 1, tf.float64))
            if p < keep:
                kept = kept.write(p, h)
        kept = tf.cond(keep > 0, kept.stack,
                       lambda: tf.zeros(tf.concat([[0], tf.shape(first_h)], 0)))
        return means.stack(), kept, first_h, first_alpha

    def encode_passes(self, x, pass_seeds, wanted, keep=0):
        """Views of every input, one pass per seed in ``pass_seeds``.

        Returns ``(means, kept, first_h, first_alpha)``: ``means[j]`` is ``[N, D]`` float64,
        the average over the first M views for the j-th M in ``wanted`` (sorted passes,
        1-based); ``kept`` the first ``keep`` passes' features ``[keep, N, D]``; the first
        pass's features and parameters.
        """
        pass_seeds = tf.stack([tf.convert_to_tensor(s, tf.int64) for s in pass_seeds])
        mask = tf.constant([p + 1 in set(wanted) for p in range(len(pass_seeds))])
        keep = tf.constant(min(int(keep), len(pass_seeds)), tf.int32)
        parts = [self._graph(xb)(xb, pass_seeds, tf.constant(i, tf.int64), mask, keep)
                 for i, xb in enumerate(input_batches(x, self.batch_size))]
        means, kept, first_h, first_alpha = (
            tf.concat([part[k] for part in parts], axis=1 if k < 2 else 0).numpy()
            for k in range(4))
        return means, kept, first_h, first_alpha

    def _graph(self, batch):
        # One graph per encoder and transformation, traced once with the batch dimension and
        # the number of passes left open: the last, smaller batch, the monitor's next epoch
        # and another M list reuse it (retracing each cost seconds and drew TF's warning).
        if self._passes is None:
            batch = tf.convert_to_tensor(batch)
            self._passes = tf.function(self._batch_passes).get_concrete_function(
                tf.TensorSpec([None, *batch.shape[1:]], batch.dtype),
                tf.TensorSpec([None, 2], tf.int64), tf.TensorSpec([], tf.int64),
                tf.TensorSpec([None], tf.bool), tf.TensorSpec([], tf.int32))
        return self._passes

    def encode(self, x, seed):
        """Representations ``[N, D]`` and parameters ``[N, K]`` of one random view of each input."""
        _, _, h, alpha = self.encode_passes(x, [seed], [1])
        return h, alpha


def probe_scores(task, l2, train_h, train_y, test_h, test_y, label_names):
    """Fits the task's linear probe on ``train_h`` and scores it on ``test_h`` (``{}`` when
    the data has no labels)."""
    if task == "unlabelled":
        return {}
    if task == "regression":
        pred = probe.fit_ridge(train_h, train_y, l2).predict(test_h)
        per_column = probe.mse_per_column(pred, test_y)
        return {"mse": probe.mse(pred, test_y),
                "mse_per_target": dict(zip(label_names, map(float, per_column)))}
    fitted = probe.fit_logistic(train_h, train_y, l2, num_classes=len(label_names))
    logits = fitted.predict_logits(test_h)
    return {"accuracy": probe.accuracy(logits, test_y),
            "cross_entropy": probe.cross_entropy(logits, test_y),
            "probe_grad_norm": float(fitted.grad_norm)}


def feature_averaged_scores(views, split, num_passes, score, seed, keep_test_passes=0):
    """``score(probe_features, test_features)`` with features averaged over M views, per M.

    The average over M reuses the first M views, so all M cost ``max(num_passes)`` passes.
    Returns ``(scores by M, first)``: ``first`` holds the first pass's features and
    parameters and a list of the first ``keep_test_passes`` passes of test features.
    """
    wanted = sorted({int(m) for m in num_passes})
    passes = range(1, wanted[-1] + 1)
    probe_means, _, probe_h, probe_alpha = views.encode_passes(
        split["probe_x"], [draws.fold(seed, PROBE_SPLIT, p) for p in passes], wanted)
    test_means, kept, test_h, test_alpha = views.encode_passes(
        split["test_x"], [draws.fold(seed, TEST_SPLIT, p) for p in passes], wanted,
        keep_test_passes)
    scores = {m: score(probe_mean, test_mean)
              for m, probe_mean, test_mean in zip(wanted, probe_means, test_means)}
    first = {"probe_h": probe_h, "probe_alpha": probe_alpha, "test_h": test_h,
             "test_alpha": test_alpha, "test_passes": list(kept)}
    return scores, first
