"""Evaluates a trained run: ``python -m invcl_tf.evaluate --workdir=DIR --num_passes=1,10,30``.

Writes ``DIR/results.json`` and ``DIR/feature_averaging.png`` (or into ``--output_dir``) and
prints a table. With ``--robustness`` it instead sweeps test-time nuisance shifts
(``eval.robustness_values``; images also ``eval.rotation_values`` and
``eval.shift_values``) and writes ``robustness.json`` and ``robustness.png``. The run's
stored config is used; ``--config.eval.*`` and ``--config.dataset.data_dir`` override it.
"""

from absl import flags
from ml_collections import config_flags

from invcl_tf import cli, configuration, errors, serving, stored_configs, workdir

_WORKDIR = flags.DEFINE_string("workdir", None, "A directory written by invcl-train.")
_SAVED_MODEL = flags.DEFINE_string(
    "saved_model", None, "Evaluate an exported SavedModel (invcl-export) instead of a workdir.")
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", None, "Where to write results (default: the workdir, or PATH.eval for "
    "--saved_model); keeps the training run's results.json untouched.")
_CONFIG = config_flags.DEFINE_config_dict(
    "config", configuration.base_config(), "Overrides of the run's stored config: "
    "--config.eval.<field>=... and --config.dataset.data_dir=DIR only.", lock_config=True)
_NUM_PASSES = flags.DEFINE_list(
    "num_passes", None, "Views averaged per input, e.g. 1,10,30 (default: the run's "
    "eval.num_passes).")
_ROBUSTNESS = flags.DEFINE_bool(
    "robustness", False, "Sweep test-time nuisance shifts instead (CIFAR: colour strength; "
    "Spirograph: background colours and h shifted or widened), refitting the probe per point.")


def _parse_passes(values):
    if not values:
        return None
    try:
        passes = [int(m) for m in values]
    except ValueError:
        passes = []
    if not passes or min(passes) < 1:
        raise errors.InputError(f"--num_passes={','.join(values)}: give integers >= 1, e.g. "
                                "--num_passes=1,10,30")
    return passes


def main(argv):
    del argv
    if bool(_WORKDIR.value) == bool(_SAVED_MODEL.value):
        cli.fail("invcl-evaluate", "pass exactly one of --workdir=DIR (a trained run) or "
                 "--saved_model=PATH (an export)")
    passes = _parse_passes(_NUM_PASSES.value)
    if _SAVED_MODEL.value:
        encoder = serving.SavedEncoder(_SAVED_MODEL.value)
        config = stored_configs.from_json(encoder.config_json())
        out = _OUTPUT_DIR.value or _SAVED_MODEL.value.rstrip("/") + ".eval"
    else:
        config = workdir.load_config(_WORKDIR.value)
        encoder = workdir.load_encoder(_WORKDIR.value)
        out = _OUTPUT_DIR.value or _WORKDIR.value
    config = stored_configs.with_overrides(
        config, config_flags.get_override_values(flags.FLAGS["config"]))
    if _ROBUSTNESS.value:
        cli.robustness_and_report(encoder, config, out)
    else:
        cli.evaluate_and_report(encoder, config, out, passes)


def run():
    """Console-script entry point (``invcl-evaluate``)."""
    cli.run_main("invcl-evaluate", main)


if __name__ == "__main__":
    run()
