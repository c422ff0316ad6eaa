"""``InvCLRHyperModel``: builds InvCLR from a config plus hyperparameters and scores it on a
validation split carved from the training set (never the test set)."""

import copy
import math

import keras_tuner
import numpy as np

from invcl_tf import distribute, errors, eval_protocol, feature_averaging, pretraining
from invcl_tf.data import draws, pipeline, sources, subsets

#: name -> ("log", lo, hi) | ("float", lo, hi) | ("choice", [values]); names are config fields.
DEFAULT_SPACE = {"gp.weight": ("log", 1e-4, 1.0), "gp.clip": ("choice", [1.0, 1000.0])}
BASELINE = "baseline"
#: What the baseline trial trains with (and records) in place of the searched values.
BASELINE_VALUES = {"gp.weight": 0.0}


def _declare(hp, name, spec):
    kind = spec[0]
    if kind == "log":
        return hp.Float(name, spec[1], spec[2], sampling="log")
    if kind == "float":
        return hp.Float(name, spec[1], spec[2])
    if kind == "choice":
        return hp.Choice(name, list(spec[1]))
    raise errors.InputError(f"--space: unknown kind {kind!r} for {name}; use log, float or "
                            "choice")


def check_space(config, space):
    """Raises ``InputError`` unless every searched name is a ``section.field`` of ``config``."""
    for name, spec in space.items():
        section, _, field = name.partition(".")
        if not field or section not in config or field not in config[section]:
            raise errors.InputError(f"--space: {name!r} is not a config field; use dotted "
                                    "names such as gp.weight or train.base_lr")
        if not isinstance(spec, (list, tuple)) or not spec:
            raise errors.InputError(f"--space: {name} needs a spec such as [\"log\", 1e-4, 1]")


def _in_space(value, spec):
    """``value`` where ``spec`` admits it; else the nearest value it admits (a choice: its
    first option)."""
    if spec[0] == "choice":
        return value if value in list(spec[1]) else list(spec[1])[0]
    return min(max(float(value), spec[1]), spec[2])


def baseline_settings(config, space):
    """What the λ = 0 baseline and its paired trial train with: ``(baseline, paired)``, each
    ``{searched field: value}``.

    Every searched field takes the base config's value (or the nearest the space admits) in
    both, but λ, which is 0 in the baseline: the two differ in λ alone, so their difference
    is what the penalty buys with everything else as configured.
    """
    paired = {name: _in_space(getattr(getattr(config, name.split(".")[0]),
                                      name.split(".")[1]), spec)
              for name, spec in space.items()}
    baseline = {**paired, **{k: v for k, v in BASELINE_VALUES.items() if k in space}}
    return baseline, paired


def trial_config(base, hp, space):
    """The base config with this trial's values (the oracle has set the baseline's)."""
    config = copy.deepcopy(base)
    config.unlock()
    for name, spec in space.items():
        section, field = name.split(".")
        setattr(getattr(config, section), field, _declare(hp, name, spec))
    if hp.Boolean(BASELINE, default=False):
        for name, value in BASELINE_VALUES.items():
            section, field = name.split(".")
            setattr(getattr(config, section), field, value)
    # Hyperband decides a trial's epochs; the learning-rate schedule spans exactly those.
    config.train.epochs = int(hp.values.get("tuner/epochs", config.train.epochs))
    return config.lock()


class InvCLRHyperModel(keras_tuner.HyperModel):
    """Builds and trains InvCLR per trial; the objective is a validation linear probe.

    The training inputs are split once into a fitting part and a validation part: by
    position for Spirograph's i.i.d. targets, drawn per class (``subsets.split_off``) for
    images, whose stored order may be class by class. Trials train on the fitting part only
    (the input pipeline reads nothing else); the probe is fitted on half of it and scored on
    the validation part. The test split is never touched.

    Args:
      config: the base run config (``ml_collections``).
      space: ``{config field: spec}`` as ``DEFAULT_SPACE``.
      validation_fraction: share of the training inputs held out to score the probe.
    """

    def __init__(self, config, space=None, validation_fraction=0.2):
        super().__init__(name="invclr")
        self.config = config
        self.space = dict(space or DEFAULT_SPACE)
        check_space(config, self.space)
        self.validation_fraction = validation_fraction
        self.data = sources.load(config)
        if self.data.task == "unlabelled":
            raise errors.InputError("--config.dataset: the tuner scores a linear probe, which "
                                    "needs labels; give the folder class subfolders")
        n = len(self.data.train_x)
        if self.data.task == "regression":
            cut = n - max(2, int(n * validation_fraction))
            fit, held = np.arange(cut), np.arange(cut, n)
        else:
            fit, held = subsets.split_off(n, validation_fraction, self.data.train_y,
                                          subsets.TUNER)
        self.fit_x, self.fit_y = sources.select(self.data.train_x, self.data.train_y, fit)
        self.val_x, self.val_y = sources.select(self.data.train_x, self.data.train_y, held)

    @property
    def objective(self):
        """The tuner objective: validation probe MSE (min) or accuracy (max)."""
        if self.data.task == "regression":
            return keras_tuner.Objective("val_probe_mse", "min")
        return keras_tuner.Objective("val_probe_accuracy", "max")

    def build(self, hp):
        config = trial_config(self.config, hp, self.space)
        distribute.set_precision(config.train.precision)
        steps = pipeline.steps_per_epoch(len(self.fit_x), config.train.batch_size)
        with distribute.strategy_for(config.distribute).scope():
            return pretraining.build_model(config, self.data.transform, steps)

    def fit(self, hp, model, *args, epochs=None, initial_epoch=0, callbacks=(), verbose=0,
            **kwargs):
        """Trains on the fit part and returns ``{objective: value}`` on the validation part.

        Hyperband passes ``epochs``; the learning-rate schedule then spans those epochs. A
        non-finite loss fails the trial (recorded as failed; the search goes on).
        """
        del args, kwargs
        config = trial_config(self.config, hp, self.space)
        try:
            pretraining.fit(model, config, self.fit_x, self.data.transform, initial_epoch,
                            epochs, callbacks=list(callbacks), verbose=verbose)
        except pretraining.NonFiniteLossError as err:
            raise keras_tuner.errors.FailedTrialError(
                f"{err} with {dict(hp.values)}") from err
        return self.score(model, config)

    def score(self, model, config):
        """Probe score on the validation part, the probe fitted on half the fit part (M = 1)."""
        probe_x, probe_y = sources.draw_subset(self.fit_x, self.fit_y, len(self.fit_x) // 2,
                                               self.data.task != "regression",
                                               subsets.TUNER_PROBE)
        split = {"probe_x": probe_x, "probe_y": probe_y, "test_x": self.val_x,
                 "test_y": self.val_y}
        views = feature_averaging.ViewEncoder(
            eval_protocol.inference_encoder(model.encoder, config.eval.precision),
            self.data.transform, config.eval.batch_size)
        scores, _ = feature_averaging.feature_averaged_scores(
            views, split, [1], lambda p, t: feature_averaging.probe_scores(
                self.data.task, config.eval.probe_l2, p, split["probe_y"], t, split["test_y"],
                self.data.label_names), draws.fold(config.seed, draws.STREAM_EVAL, 9))
        main = "mse" if self.data.task == "regression" else "accuracy"
        value = scores[1][main]
        if not math.isfinite(value):
            raise keras_tuner.errors.FailedTrialError("the validation probe score is not finite")
        return {f"val_probe_{main}": value}
