"""A global batch that does not split over the replicas is refused, naming the fix (3 CPUs)."""

import pytest
import tensorflow as tf

from invcl_tf import pretraining, replicas
from invcl_tf.data import draws
from invcl_tf.transforms import spirograph
from tests.repo_configs import spirograph_cpu

TRANSFORM = spirograph.SpirographTransform()


@pytest.fixture(scope="module")
def three():
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1", "/cpu:2"])


def _model(strategy, batch_size):
    config = spirograph_cpu.get_config("tiny")
    config.train.batch_size = batch_size
    with strategy.scope():
        return config, pretraining.build_model(config, TRANSFORM, steps_per_epoch=1)


def _batch(batch_size, num_extra):
    targets = spirograph.sample_targets([0, 3], batch_size)
    return draws.draw_views(TRANSFORM, targets, draws.fold(0, 9), num_extra)


def test_the_nearest_batch_sizes_that_work_are_named():
    with pytest.raises(replicas.UnevenBatchError, match=r"512 does not split equally over 7 "
                       r"replicas.*multiple of 7, e.g. 511 or 518"):
        replicas.require_even_split(512, 7)
    with pytest.raises(replicas.UnevenBatchError, match="e.g. 3$"):
        replicas.require_even_split(2, 3)
    replicas.require_even_split(512, 8)
    replicas.require_even_split(5, 1)


def test_fit_refuses_a_static_batch_of_16_on_3_replicas(three):
    config, model = _model(three, 16)
    ds = tf.data.Dataset.from_tensors(_batch(16, config.gp.num_extra))
    with pytest.raises(ValueError, match=r"batch_size=16 does not split equally over 3 "
                                         r"replicas.*15 or 18"):
        model.fit(ds, epochs=1, steps_per_epoch=1, verbose=0)
