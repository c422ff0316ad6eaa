"""Builds a run's data from its config: inputs, labels and the differentiable transformation."""

import dataclasses

import numpy as np

from invcl_tf.data import pipeline, spirograph

_SPLIT_TRAIN, _SPLIT_TEST = 0, 1


@dataclasses.dataclass(frozen=True)
class DataBundle:
    """Everything the trainer and the evaluator need to know about a dataset.

    ``train_x``/``test_x`` are what the transform's ``prepare_view``/``apply`` take (Spirograph:
    target vectors); ``train_y``/``test_y`` the probe's labels; ``task`` "regression" or
    "classification"; ``label_names`` names the regression targets or the classes.
    """

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    transform: object
    task: str
    label_names: tuple


def spirograph_targets(seed, train_size, test_size):
    """The run's fixed train and test target vectors: a function of ``seed`` alone."""
    base = pipeline.fold(seed, pipeline.STREAM_DATA)
    train = spirograph.sample_targets(pipeline.fold(base, _SPLIT_TRAIN), train_size).numpy()
    test = spirograph.sample_targets(pipeline.fold(base, _SPLIT_TEST), test_size).numpy()
    return train, test


def load(config):
    """The ``DataBundle`` of ``config.dataset`` (Spirograph's targets sampled once per seed)."""
    if config.dataset.name == "spirograph":
        train, test = spirograph_targets(config.seed, config.dataset.train_size,
                                         config.dataset.test_size)
        return DataBundle(train, train, test, test, spirograph.SpirographTransform(),
                          "regression", spirograph.TARGET_NAMES)
    raise ValueError(f"--config.dataset.name: unknown dataset {config.dataset.name!r}")
