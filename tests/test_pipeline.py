"""The input pipeline: every draw a function of (seed, epoch, step), shapes as the step needs."""

import numpy as np
import pytest
import tensorflow as tf

from invcl_tf.data import draws, pipeline, sources
from invcl_tf.transforms import spirograph

TRANSFORM = spirograph.SpirographTransform()


def _inputs(n=40):
    return np.arange(n * 4, dtype=np.float32).reshape(n, 4)


def _batches(ds):
    return [{k: v.numpy() for k, v in b.items()} for b in ds]


def test_batch_shapes_and_sign_seed_rows():
    (batch,) = _batches(pipeline.train_dataset(_inputs(8), TRANSFORM, 8, 5, 0, 0, 1))
    assert batch["x1"].shape == (8, 4) and batch["alpha1"].shape == (8, 6)
    assert batch["alpha_extra"].shape == (8, 5, 6)
    assert batch["aux1"].shape == (8, 0)
    assert batch["sign_seed"].shape == (8, 2)
    assert (batch["sign_seed"] == batch["sign_seed"][0]).all()
    for key in ("alpha1", "alpha2"):
        assert not np.allclose(batch[key], batch["alpha_extra"][:, 0])
    assert not np.allclose(batch["alpha1"], batch["alpha2"])


def test_resumed_epochs_draw_what_an_uninterrupted_run_draws():
    full = _batches(pipeline.train_dataset(_inputs(), TRANSFORM, 8, 3, 7, 0, 3))
    resumed = _batches(pipeline.train_dataset(_inputs(), TRANSFORM, 8, 3, 7, 2, 3))
    assert len(full) == 15 and len(resumed) == 5
    for a, b in zip(full[10:], resumed):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def test_each_epoch_is_a_new_permutation_and_seeds_differ():
    batches = _batches(pipeline.train_dataset(_inputs(), TRANSFORM, 8, 0, 1, 0, 2))
    epoch0 = np.concatenate([b["x1"][:, 0] for b in batches[:5]])
    epoch1 = np.concatenate([b["x1"][:, 0] for b in batches[5:]])
    np.testing.assert_array_equal(np.sort(epoch0), _inputs()[:, 0])
    np.testing.assert_array_equal(np.sort(epoch1), _inputs()[:, 0])
    assert not np.array_equal(epoch0, epoch1)
    seeds = {tuple(b["sign_seed"][0]) for b in batches}
    assert len(seeds) == len(batches)
    other = _batches(pipeline.train_dataset(_inputs(), TRANSFORM, 8, 0, 2, 0, 1))
    assert not np.array_equal(other[0]["alpha1"], batches[0]["alpha1"])


def test_alpha_within_nuisance_ranges():
    (batch,) = _batches(pipeline.train_dataset(_inputs(16), TRANSFORM, 16, 50, 0, 0, 1))
    lo, hi = np.array(spirograph.NUISANCE_RANGES).T
    assert (batch["alpha_extra"] >= lo).all() and (batch["alpha_extra"] <= hi).all()


def test_steps_per_epoch_drops_the_partial_batch_and_names_bad_sizes():
    assert pipeline.steps_per_epoch(100, 32) == 3
    with pytest.raises(ValueError, match="train.batch_size must be at least 2"):
        pipeline.steps_per_epoch(100, 1)
    with pytest.raises(ValueError, match="dataset.train_size"):
        pipeline.steps_per_epoch(10, 32)


def test_fold_is_deterministic_and_separates_streams():
    a = draws.fold(3, 1, 2).numpy()
    np.testing.assert_array_equal(a, draws.fold(3, 1, 2).numpy())
    assert not np.array_equal(a, draws.fold(3, 2, 1).numpy())
    assert not np.array_equal(a, draws.fold(4, 1, 2).numpy())


def test_spirograph_targets_depend_on_the_seed_only():
    train, test = sources.spirograph_targets(0, 100, 20)
    train2, _ = sources.spirograph_targets(0, 100, 20)
    other, _ = sources.spirograph_targets(1, 100, 20)
    np.testing.assert_array_equal(train, train2)
    assert not np.allclose(train, other)
    assert train.shape == (100, 4) and test.shape == (20, 4)
    assert not np.allclose(train[:20], test)
    assert tf.reduce_all(train[:, 0] >= 2.0) and tf.reduce_all(train[:, 0] <= 5.0)


def _as_numpy(batches):
    return [{k: v.numpy() for k, v in b.items()} for b in batches]


def test_a_workers_share_of_rows_is_drawn_exactly_as_in_the_whole_batch():
    # Two workers of a multi-worker run each build rows [0, 16) and [16, 32) of every global
    # batch; together they must be the one-device batches, every draw included.
    targets = spirograph.sample_targets([4, 4], 96)
    transform = spirograph.SpirographTransform()
    whole = _as_numpy(pipeline.train_dataset(targets, transform, 32, 3, 7, 0, 2))
    shares = [_as_numpy(pipeline.train_dataset(targets, transform, 32, 3, 7, 0, 2,
                                               rows=(start, 16))) for start in (0, 16)]
    assert len(whole) == len(shares[0]) == 6
    for full, first, second in zip(whole, *shares):
        for key in full:
            np.testing.assert_array_equal(np.concatenate([first[key], second[key]]), full[key],
                                          err_msg=key)


def test_spirograph_targets_are_drawn_in_the_graph_not_stored_in_it():
    # The same batches as from the targets held as an array, from a graph that does not grow
    # with the number of targets (an array would be embedded as a constant).
    def graph_size(inputs):
        ds = pipeline.train_dataset(inputs, spirograph.SpirographTransform(), 32, 2, 3, 0, 1)
        return len(ds._as_serialized_graph().numpy()), ds

    small, ds = graph_size(sources.GeneratedTargets(3, 1_000))
    large, _ = graph_size(sources.GeneratedTargets(3, 100_000))
    assert large < small + 1_000
    array, _ = sources.spirograph_targets(3, 1_000, 2)
    constant, from_array = graph_size(array)
    assert constant > small + 10_000  # 1,000 x 4 float32 as a constant
    for a, b in zip(ds, from_array):
        for key in a:
            np.testing.assert_array_equal(a[key].numpy(), b[key].numpy(), err_msg=key)
    np.testing.assert_array_equal(np.asarray(sources.GeneratedTargets(3, 1_000)[:10]),
                                  array[:10])
