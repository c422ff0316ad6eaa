"""Oracles whose first trial is the λ = 0 baseline and whose second is its pair, so every
search shows what λ buys.

The baseline stays a baseline: its recorded ``gp.weight`` is 0 (what it trains with, what
``trials.csv`` reports and what the Bayesian oracle fits), and a Hyperband continuation of it
is again a λ = 0 trial. Given ``settings`` (``hypermodel.baseline_settings``), the baseline
sets every other searched field to the base config's value, and the next new trial (the
pair) is the base config itself, λ included: the two differ in λ alone. The trials after
them search freely.
"""

import keras_tuner

from tuning.hypermodel import BASELINE, BASELINE_VALUES

_CONTINUES = "tuner/trial_id"  # set by Hyperband on a trial that continues an earlier one


def baseline_values(values):
    """``values`` with the baseline's fields set to what a baseline trains with (λ = 0)."""
    if not values.get(BASELINE):
        return values
    return {**values, **{k: v for k, v in BASELINE_VALUES.items() if k in values}}


def is_paired(values, paired):
    """Whether trial ``values`` are the pair's: not the baseline, every searched field at
    ``paired``'s value."""
    return bool(paired) and not values.get(BASELINE) and all(
        values.get(name) == value for name, value in paired.items())


def _with_baseline(oracle_class):
    class BaselineFirst(oracle_class):
        """``{oracle_class.__name__}`` whose first trial runs without the penalty."""

        def __init__(self, *args, settings=None, **kwargs):
            super().__init__(*args, **kwargs)
            self.baseline_settings, self.paired_settings = settings or ({}, {})

        def populate_space(self, trial_id):
            found = super().populate_space(trial_id)
            if found.get("status") != keras_tuner.engine.trial.TrialStatus.RUNNING:
                return found
            values = dict(found["values"])
            if _CONTINUES not in values:  # a continuation keeps its parent's values
                earlier = [t.hyperparameters.values for t in self.trials.values()
                           if t.trial_id != trial_id]
                values[BASELINE] = not any(v.get(BASELINE) for v in earlier)
                if values[BASELINE]:
                    values.update(self.baseline_settings)
                elif not any(is_paired(v, self.paired_settings) for v in earlier):
                    values.update(self.paired_settings)
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
