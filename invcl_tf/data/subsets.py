"""Which examples a size limit, a probe split or a tuner partition takes: never the stored order.

A folder lists its files class by class and a TFDS split may be sorted too, so "the first n"
can hold only some classes. Every subset here is drawn instead: with labels, stratified (each
class keeps its share, by largest remainders, and at least one example while n allows), the
members of a class chosen by a seeded permutation; without labels, a seeded permutation.
The draws depend on a salt and the labels only, not on the run's seed, so every seed of a
study sees the same data. Indices come back sorted, so streamed sources still read in order.
"""

import numpy as np
from absl import logging

# Salts: one stream per use, so a limit, the probe split and the tuner never share draws.
(LIMIT_TRAIN, LIMIT_TEST, PROBE, TEST, MONITOR_PROBE, MONITOR_TEST, TUNER, TUNER_PROBE,
 STATS) = range(9)


def _rng(salt, seed=0):
    return np.random.default_rng(np.random.SeedSequence([int(salt), int(seed)]))


def _quotas(counts, n):
    """Per-class sizes summing to ``n``: proportional to ``counts`` by largest remainders,
    every class at least one while ``n`` allows, none above its count."""
    counts = np.asarray(counts, np.int64)
    n = min(int(n), int(counts.sum()))
    quota = np.zeros_like(counts)
    if n >= len(counts):  # one each first, then the rest proportionally
        quota[:] = np.minimum(counts, 1)
    rest = n - quota.sum()
    room = counts - quota
    if rest > 0 and room.sum() > 0:
        exact = room * rest / room.sum()
        extra = np.floor(exact).astype(np.int64)
        left = rest - extra.sum()
        order = np.argsort(-(exact - extra), kind="stable")  # largest remainder first
        extra[order[:left]] += 1
        quota += extra
    return quota


def draw(n, size, labels=None, salt=0, seed=0):
    """Sorted int64 indices of ``size`` of ``n`` examples (all of them when ``size >= n``):
    stratified by ``labels`` (int ``[n]``) when given, else a seeded permutation's first."""
    if size is None or size >= n:
        return np.arange(n, dtype=np.int64)
    rng = _rng(salt, seed)
    if labels is None:
        return np.sort(rng.permutation(n)[:size]).astype(np.int64)
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    chosen = []
    for cls, quota in zip(classes, _quotas(counts, size)):
        members = np.flatnonzero(labels == cls)
        chosen.append(members[rng.permutation(len(members))[:quota]])
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def split_off(n, fraction, labels=None, salt=0, seed=0, minimum=2):
    """``(kept, held)``: sorted indices partitioning ``range(n)``, ``held`` holding
    ``max(minimum, int(n * fraction))`` examples drawn as ``draw`` does."""
    held = draw(n, max(minimum, int(n * fraction)), labels, salt, seed)
    kept = np.setdiff1d(np.arange(n, dtype=np.int64), held, assume_unique=True)
    return kept, held


def warn_about_classes(train_labels, test_labels, names, what):
    """Logs one line when a probe's training or test split holds one class, or the training
    split lacks classes the test split holds; returns the line (None when all is well)."""
    if train_labels is None or test_labels is None:
        return None
    train, test = set(np.unique(train_labels).tolist()), set(np.unique(test_labels).tolist())
    missing = sorted(test - train)
    line = None
    if len(train) < 2 or len(test) < 2:
        which = "training" if len(train) < 2 else "test"
        line = (f"{what}: the probe's {which} split holds a single class; its scores say "
                "nothing about the representation (give the data more classes or examples)")
    elif missing:
        shown = ", ".join(str(names[i]) if names and i < len(names) else str(i)
                          for i in missing[:5])
        line = (f"{what}: the probe's training split lacks {len(missing)} class(es) of the "
                f"test split ({shown}); raise its size or give those classes more examples")
    if line:
        logging.warning("%s", line)
    return line
