"""Oracles whose first trial is the λ = 0 baseline, so every search shows what λ buys.

The baseline stays a baseline: its recorded ``gp.weight`` is 0 (what it trains with, what
``trials.csv`` reports and what the Bayesian oracle fits), and a Hyperband continuation of it
is again a λ = 0 trial.
"""

import keras_tuner

from tuning.hypermodel import BASELINE, BASELINE_VALUES

_CONTINUES = "tuner/trial_id"  # set by Hyperband on a trial that continues an earlier one


def baseline_values(values):
    """``values`` with the baseline's fields set to what a baseline trains with (λ = 0)."""
    if not values.get(BASELINE):
        return values
    return {**values, **{k: v for k, v in BASELINE_VALUES.items() if k in values}}


def _with_baseline(oracle_class):
    class BaselineFirst(oracle_class):
        """``{oracle_class.__name__}`` whose first trial runs without the penalty."""

        def populate_space(self, trial_id):
            found = super().populate_space(trial_id)
            if found.get("status") != keras_tuner.engine.trial.TrialStatus.RUNNING:
                return found
            values = dict(found["values"])
            if _CONTINUES not in values:  # a continuation keeps its parent's flag
                values[BASELINE] = not any(
                    t.hyperparameters.values.get(BASELINE)
                    for t in self.trials.values() if t.trial_id != trial_id)
            return {**found, "values": baseline_values(values)}

    BaselineFirst.__name__ = f"BaselineFirst{oracle_class.__name__}"
    return BaselineFirst


class _BaselineOnTheLogAxis:
    """For the Bayesian oracle: λ = 0 has no coordinate on a log axis (log 0), so while the
    Gaussian process is fitted the baseline stands at the nearest point of the space, the
    range's lower end; its recorded value stays 0."""

    def _vectorize_trials(self):
        moved = []
        for trial in self.trials.values():
            values = trial.hyperparameters.values
            if not values.get(BASELINE):
                continue
            for hp in self.hyperparameters.space:
                low = getattr(hp, "min_value", None)
                if hp.name in BASELINE_VALUES and low is not None and \
                        values.get(hp.name, low) < low:
                    moved.append((values, hp.name, values[hp.name]))
                    values[hp.name] = low
        try:
            return super()._vectorize_trials()
        finally:
            for values, name, value in moved:
                values[name] = value


ORACLES = {
    "random": _with_baseline(keras_tuner.oracles.RandomSearchOracle),
    "bayesian": type("BaselineFirstBayesianOptimizationOracle", (
        _BaselineOnTheLogAxis, _with_baseline(keras_tuner.oracles.BayesianOptimizationOracle)), {}),
    "hyperband": _with_baseline(keras_tuner.oracles.HyperbandOracle),
}
