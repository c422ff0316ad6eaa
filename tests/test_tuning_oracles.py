"""The λ = 0 baseline stays a baseline inside the oracles (no training: scores are made up)."""

import keras_tuner
import pytest

from tests.repo_configs import spirograph_cpu
from tuning.hypermodel import BASELINE, DEFAULT_SPACE, trial_config
from tuning.oracles import ORACLES

_CONTINUES = "tuner/trial_id"


def _oracle(kind, tmp_path, **kwargs):
    oracle = ORACLES[kind](objective=keras_tuner.Objective("val_probe_mse", "min"), seed=3,
                           **kwargs)
    oracle._set_project_dir(str(tmp_path), "search")
    space = keras_tuner.HyperParameters()
    trial_config(spirograph_cpu.get_config("tiny"), space, DEFAULT_SPACE)  # declares the space
    oracle.update_space(space)
    return oracle


def _run(oracle, score, limit=40):
    """Creates and ends trials until the oracle stops, scoring each with ``score(values)``."""
    trials = []
    for _ in range(limit):
        trial = oracle.create_trial("tuner0")
        if trial.status != "RUNNING":
            break
        values = trial.hyperparameters.values
        oracle.update_trial(trial.trial_id, {"val_probe_mse": score(values)})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        trials.append(trial)
    return trials


def _baseline_wins(values):
    # λ = 0 scores best, so Hyperband keeps continuing the baseline's lineage.
    return 0.01 if values.get(BASELINE) else 0.1 + values["gp.weight"]


def test_a_hyperband_continuation_of_the_baseline_is_a_baseline(tmp_path):
    trials = _run(_oracle("hyperband", tmp_path, max_epochs=9, factor=3), _baseline_wins)
    by_id = {t.trial_id: t.hyperparameters.values for t in trials}
    first = trials[0].hyperparameters.values
    assert first[BASELINE] and first["gp.weight"] == 0.0
    continuations = [v for v in by_id.values() if by_id.get(v.get(_CONTINUES), {}).get(BASELINE)]
    assert continuations, "the made-up scores should make Hyperband continue the baseline"
    for values in continuations:
        assert values[BASELINE] and values["gp.weight"] == 0.0
    # Exactly one baseline lineage: every other baseline trial continues a baseline trial.
    roots = [v for v in by_id.values() if v[BASELINE] and _CONTINUES not in v]
    assert len(roots) == 1
    assert all(not v[BASELINE] for v in by_id.values() if _CONTINUES not in v and v is not
               roots[0])


@pytest.mark.parametrize("kind", ["random", "bayesian"])
def test_the_baseline_records_lambda_zero_and_the_search_goes_on(tmp_path, kind):
    extra = {"num_initial_points": 2} if kind == "bayesian" else {}
    trials = _run(_oracle(kind, tmp_path, max_trials=5, **extra),
                  lambda v: 0.05 if v[BASELINE] else 0.1 + v["gp.weight"])
    assert len(trials) == 5  # the Bayesian oracle fitted its Gaussian process past trial 2
    values = [t.hyperparameters.values for t in trials]
    assert values[0][BASELINE] and values[0]["gp.weight"] == 0.0
    assert all(not v[BASELINE] and 1e-4 <= v["gp.weight"] <= 1.0 for v in values[1:])


@pytest.mark.parametrize("kind", ["random", "bayesian", "hyperband"])
def test_the_baseline_and_its_pair_differ_in_lambda_alone(tmp_path, kind):
    from tuning.hypermodel import baseline_settings

    base = spirograph_cpu.get_config("tiny")
    base.train.base_lr = 5.0  # outside the searched range: the nearest value it admits
    space = {"gp.weight": ("log", 1e-4, 1.0), "train.temperature": ("choice", [0.2, 0.5]),
             "train.base_lr": ("float", 0.5, 2.0)}
    settings = baseline_settings(base, space)
    assert settings == ({"gp.weight": 0.0, "train.temperature": 0.5, "train.base_lr": 2.0},
                        {"gp.weight": 0.01, "train.temperature": 0.5, "train.base_lr": 2.0})
    extra = ({"max_epochs": 9, "factor": 3} if kind == "hyperband" else
             {"max_trials": 6, **({"num_initial_points": 3} if kind == "bayesian" else {})})
    oracle = ORACLES[kind](objective=keras_tuner.Objective("val_probe_mse", "min"), seed=3,
                           settings=settings, **extra)
    oracle._set_project_dir(str(tmp_path), "search")
    hps = keras_tuner.HyperParameters()
    trial_config(base, hps, space)
    oracle.update_space(hps)
    trials = _run(oracle, lambda v: 0.1 + v["gp.weight"] + v["train.base_lr"] / 100)
    fresh = [t.hyperparameters.values for t in trials if _CONTINUES not in
             t.hyperparameters.values]
    baseline, paired = fresh[0], fresh[1]
    assert baseline[BASELINE] and {k: baseline[k] for k in space} == settings[0]
    assert not paired[BASELINE] and {k: paired[k] for k in space} == settings[1]
    assert len(fresh) > 2 and all(not v[BASELINE] for v in fresh[2:])
    # The rest search: some trial draws other values of the other fields.
    assert any(v["train.base_lr"] != 2.0 for v in fresh[2:])
