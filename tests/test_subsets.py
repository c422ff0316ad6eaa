"""Subsets drawn per class: quotas against hand-computed values, determinism, partitions."""

import numpy as np
import pytest

from invcl_tf.data import subsets


def _counts(labels, indices, classes):
    return [int(np.sum(np.asarray(labels)[indices] == c)) for c in range(classes)]


def test_a_class_sorted_split_keeps_every_class_in_proportion():
    labels = np.repeat(np.arange(4), 20)  # a folder: class by class
    chosen = subsets.draw(80, 40, labels, salt=0)
    assert _counts(labels, chosen, 4) == [10, 10, 10, 10]
    assert np.all(np.diff(chosen) > 0)  # sorted: streamed sources read in order
    # The first 40 in stored order, what the evaluation took before, hold two classes.
    assert _counts(labels, np.arange(40), 4) == [20, 20, 0, 0]


@pytest.mark.parametrize("counts,size,expected", [
    # One each first (3), then 2 more over the rooms (4, 2, 1): exact 8/7, 4/7, 2/7 ->
    # floors 1, 0, 0, one left for the largest remainder (4/7, class 1).
    ((5, 3, 2), 5, [2, 2, 1]),
    # Fewer than the classes: no class can have one each; 2 over (6, 3, 1): 1.2, 0.6, 0.2 ->
    # floors 1, 0, 0, the one left to class 1 (0.6).
    ((6, 3, 1), 2, [1, 1, 0]),
    ((6, 3, 1), 10, [6, 3, 1]),  # all of them
    ((9, 1), 4, [3, 1]),  # the small class keeps its one
])
def test_quotas_are_the_largest_remainders_after_one_each(counts, size, expected):
    labels = np.repeat(np.arange(len(counts)), counts)
    rng = np.random.default_rng(3)
    shuffled = labels[rng.permutation(len(labels))]  # quotas do not depend on the order
    chosen = subsets.draw(len(labels), size, shuffled, salt=1)
    assert len(chosen) == min(size, len(labels))
    assert _counts(shuffled, chosen, len(counts)) == expected


def test_draws_depend_on_salt_and_seed_only():
    labels = np.repeat(np.arange(3), [7, 8, 9])
    first = subsets.draw(24, 9, labels, salt=2)
    np.testing.assert_array_equal(first, subsets.draw(24, 9, labels, salt=2))
    assert not np.array_equal(first, subsets.draw(24, 9, labels, salt=3))
    assert not np.array_equal(first, subsets.draw(24, 9, labels, salt=2, seed=1))
    unlabelled = subsets.draw(100, 10, None, salt=2)
    assert len(set(unlabelled.tolist())) == 10 and unlabelled.max() > 10  # not a prefix
    np.testing.assert_array_equal(subsets.draw(5, None), np.arange(5))


def test_split_off_partitions_and_stratifies_the_held_part():
    labels = np.repeat(np.arange(2), [30, 10])
    kept, held = subsets.split_off(40, 0.2, labels, salt=6)
    assert len(held) == 8 and _counts(labels, held, 2) == [6, 2]
    np.testing.assert_array_equal(np.sort(np.concatenate([kept, held])), np.arange(40))
    assert not set(kept.tolist()) & set(held.tolist())
    assert len(subsets.split_off(10, 0.01)[1]) == 2  # at least two held out


def test_a_split_missing_classes_is_named_in_one_line():
    names = ("cat", "dog", "owl")
    assert subsets.warn_about_classes([0, 1, 2], [2, 1, 0], names, "evaluation") is None
    line = subsets.warn_about_classes([0, 0, 1], [0, 1, 2], names, "evaluation")
    assert "lacks 1 class(es) of the test split (owl)" in line and "\n" not in line
    line = subsets.warn_about_classes([1, 1], [0, 1], names, "monitor")
    assert line.startswith("monitor: the probe's training split holds a single class")
    assert "test split holds a single class" in subsets.warn_about_classes([0, 1], [1, 1],
                                                                           names, "x")
