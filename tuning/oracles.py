"""Oracles whose first trial is the λ = 0 baseline, so every search shows what λ buys."""

import keras_tuner

from tuning.hypermodel import BASELINE


def _with_baseline(oracle_class):
    class BaselineFirst(oracle_class):
        """``{oracle_class.__name__}`` whose first trial runs without the penalty."""

        def populate_space(self, trial_id):
            found = super().populate_space(trial_id)
            if found.get("status") == keras_tuner.engine.trial.TrialStatus.RUNNING:
                has_baseline = any(t.hyperparameters.values.get(BASELINE)
                                   for t in self.trials.values() if t.trial_id != trial_id)
                found["values"] = {**found["values"], BASELINE: not has_baseline}
            return found

    BaselineFirst.__name__ = f"BaselineFirst{oracle_class.__name__}"
    return BaselineFirst


ORACLES = {
    "random": _with_baseline(keras_tuner.oracles.RandomSearchOracle),
    "bayesian": _with_baseline(keras_tuner.oracles.BayesianOptimizationOracle),
    "hyperband": _with_baseline(keras_tuner.oracles.HyperbandOracle),
}
