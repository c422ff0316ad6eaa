"""The tuner's per-trial config: searched fields, the λ = 0 baseline, Hyperband's epochs."""

import keras_tuner
import pytest

from tests.repo_configs import spirograph_cpu
from tuning.hypermodel import BASELINE, DEFAULT_SPACE, trial_config


def _hp(**values):
    hp = keras_tuner.HyperParameters()
    hp.values.update(values)
    return hp


def test_searched_fields_and_hyperband_epochs_reach_the_config():
    base = spirograph_cpu.get_config("tiny")
    config = trial_config(base, _hp(**{"gp.weight": 0.3, "gp.clip": 1.0, "tuner/epochs": 7}),
                          DEFAULT_SPACE)
    assert (config.gp.weight, config.gp.clip, config.train.epochs) == (0.3, 1.0, 7)
    assert base.gp.weight == 0.01 and base.train.epochs == 2  # the base is not touched


def test_the_baseline_trial_has_no_penalty():
    config = trial_config(spirograph_cpu.get_config("tiny"),
                          _hp(**{"gp.weight": 0.3, BASELINE: True}), DEFAULT_SPACE)
    assert config.gp.weight == 0.0


def test_an_unknown_spec_kind_is_named():
    with pytest.raises(ValueError, match="--space: unknown kind 'uniform'"):
        trial_config(spirograph_cpu.get_config("tiny"), _hp(),
                     {"gp.weight": ("uniform", 0, 1)})
