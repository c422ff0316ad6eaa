"""Searches λ (and friends) with Keras Tuner:

    python -m tuning.search --config=configs/spirograph_cpu.py --tuner=bayesian \
        --max_trials=20 --directory=runs/tune

Running it again on the same ``--directory`` resumes the search. With keras-tuner's
``KERASTUNER_TUNER_ID``/``KERASTUNER_ORACLE_IP``/``KERASTUNER_ORACLE_PORT`` set, a chief and
workers share one search; the chief writes ``trials.csv``, ``best_config.py`` and
``objective_vs_lambda.png`` into the directory.
"""

import json

from absl import flags

from invcl_tf import cli, configuration, errors

_CONFIG = cli.define_config_flag()
_TUNER = flags.DEFINE_enum("tuner", "bayesian", ["bayesian", "hyperband", "random"],
                           "The search algorithm.")
_MAX_TRIALS = flags.DEFINE_integer("max_trials", 10, "Trials to run (bayesian, random), the "
                                   "λ = 0 baseline included.")
_DIRECTORY = flags.DEFINE_string("directory", None, "Where the search keeps its state.")
_PROJECT = flags.DEFINE_string("project_name", "invclr", "Subdirectory of --directory.")
_SPACE = flags.DEFINE_string(
    "space", None, 'JSON {config field: spec} replacing the default space, e.g. '
    '\'{"gp.weight": ["log", 1e-4, 1], "train.temperature": ["choice", [0.2, 0.5]]}\'.')
_VALIDATION = flags.DEFINE_float("validation_fraction", 0.2, "Share of the training inputs "
                                 "held out to score each trial.")
_MAX_FAILED = flags.DEFINE_integer(
    "max_consecutive_failed_trials", 5, "Stop after this many failed trials in a row (a trial "
    "fails when its loss becomes non-finite).")


def check_flags(tuner, max_trials, validation_fraction, max_failed):
    """Raises ``InputError`` naming the first search flag that cannot work."""
    if tuner != "hyperband" and max_trials < 1:
        raise errors.InputError(f"--max_trials={max_trials}: a search needs at least one trial "
                                "(the λ = 0 baseline); pass --max_trials=N with N >= 2 to "
                                "compare it with the penalty")
    if not 0 < validation_fraction < 1:
        raise errors.InputError(f"--validation_fraction={validation_fraction}: must lie in "
                                "(0, 1), e.g. 0.2")
    if max_failed < 1:
        raise errors.InputError(f"--max_consecutive_failed_trials={max_failed}: must be >= 1")


def main(argv):
    del argv
    if not _DIRECTORY.value:
        cli.fail("invcl-tune", "--directory is required: pass where the search keeps its state")
    import keras_tuner  # deferred: heavy, and only the search needs it

    from tuning import oracles, report
    from tuning.hypermodel import DEFAULT_SPACE, InvCLRHyperModel, baseline_settings

    config = _CONFIG.value
    check_flags(_TUNER.value, _MAX_TRIALS.value, _VALIDATION.value, _MAX_FAILED.value)
    configuration.validate(config)
    try:
        space = json.loads(_SPACE.value) if _SPACE.value else DEFAULT_SPACE
    except json.JSONDecodeError as err:
        raise errors.InputError(f"--space: not valid JSON ({err})") from err
    hypermodel = InvCLRHyperModel(config, space, _VALIDATION.value)
    kwargs = {"objective": hypermodel.objective, "seed": config.seed,
              "max_consecutive_failed_trials": _MAX_FAILED.value,
              "settings": baseline_settings(config, hypermodel.space)}
    if _TUNER.value == "hyperband":
        kwargs["max_epochs"] = config.train.epochs
    else:
        kwargs["max_trials"] = _MAX_TRIALS.value
    tuner = keras_tuner.Tuner(oracle=oracles.ORACLES[_TUNER.value](**kwargs),
                              hypermodel=hypermodel, directory=_DIRECTORY.value,
                              project_name=_PROJECT.value, overwrite=False)
    tuner.search()
    if keras_tuner.src.distribute.utils.is_chief_oracle() or not \
            keras_tuner.src.distribute.utils.has_chief_oracle():
        paths = report.write_outputs(tuner, hypermodel, _DIRECTORY.value)
        print("wrote " + ", ".join(paths))


def run():
    """Console-script entry point (``invcl-tune``)."""
    cli.run_main("invcl-tune", main)


if __name__ == "__main__":
    run()
