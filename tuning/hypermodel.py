"""``InvCLRHyperModel``: builds InvCLR from a config plus hyperparameters and scores it on a
validation split carved from the training set (never the test set)."""

import copy
import math

import keras_tuner

from invcl_tf import distribute, errors, eval_protocol, pretraining
from invcl_tf.data import pipeline, sources

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


def trial_config(base, hp, space):
    """The base config with this trial's values; the baseline trial runs with λ = 0."""
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


def validation_start(num_train, fraction):
    """Index where the held-out validation part of the training inputs begins.

    Training uses the inputs before it, the probe is scored on those after it; the test split
    is never touched.
    """
    return num_train - max(2, int(num_train * fraction))


class InvCLRHyperModel(keras_tuner.HyperModel):
    """Builds and trains InvCLR per trial; the objective is a validation linear probe.

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
        self.cut = validation_start(len(self.data.train_x), validation_fraction)

    @property
    def objective(self):
        """The tuner objective: validation probe MSE (min) or accuracy (max)."""
        if self.data.task == "regression":
            return keras_tuner.Objective("val_probe_mse", "min")
        return keras_tuner.Objective("val_probe_accuracy", "max")

    def build(self, hp):
        config = trial_config(self.config, hp, self.space)
        distribute.set_precision(config.train.precision)
        steps = pipeline.steps_per_epoch(self.cut, config.train.batch_size)
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
            pretraining.fit(model, config, self.data.train_x[:self.cut], self.data.transform,
                            initial_epoch, epochs, callbacks=list(callbacks), verbose=verbose)
        except pretraining.NonFiniteLossError as err:
            raise keras_tuner.errors.FailedTrialError(
                f"{err} with {dict(hp.values)}") from err
        return self.score(model, config)

    def score(self, model, config):
        """Probe score on the validation part, the probe fitted on the rest (M = 1)."""
        half = self.cut // 2
        split = {"probe_x": self.data.train_x[:half], "probe_y": self.data.train_y[:half],
                 "test_x": self.data.train_x[self.cut:], "test_y": self.data.train_y[self.cut:]}
        views = eval_protocol.ViewEncoder(model.encoder, self.data.transform,
                                       config.eval.batch_size)
        scores, _ = eval_protocol.feature_averaged_scores(
            views, split, [1], lambda p, t: eval_protocol.probe_scores(
                self.data.task, config.eval.probe_l2, p, split["probe_y"], t, split["test_y"],
                self.data.label_names), pipeline.fold(config.seed, pipeline.STREAM_EVAL, 9))
        main = "mse" if self.data.task == "regression" else "accuracy"
        value = scores[1][main]
        if not math.isfinite(value):
            raise keras_tuner.errors.FailedTrialError("the validation probe score is not finite")
        return {f"val_probe_{main}": value}
