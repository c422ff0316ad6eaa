"""Evaluates a trained run: ``python -m invcl_tf.evaluate --workdir=DIR --num_passes=1,10,30``.

Writes ``DIR/results.json`` and ``DIR/feature_averaging.png`` and prints a table. With
``--robustness`` it instead sweeps test-time nuisance shifts (``eval.robustness_values``) and
writes ``DIR/robustness.json`` and ``DIR/robustness.png``.
"""

from absl import app, flags

from invcl_tf import cli, workdir

_WORKDIR = flags.DEFINE_string("workdir", None, "A directory written by invcl-train.")
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
        raise ValueError(f"--num_passes={','.join(values)}: give integers >= 1, e.g. "
                         "--num_passes=1,10,30")
    return passes


def main(argv):
    del argv
    cli.quiet_logs()
    if not _WORKDIR.value:
        cli.fail("invcl-evaluate", "--workdir is required: pass the directory of a trained run")
    try:
        passes = _parse_passes(_NUM_PASSES.value)
        config = workdir.load_config(_WORKDIR.value)
        encoder = workdir.load_encoder(_WORKDIR.value)
        if _ROBUSTNESS.value:
            cli.robustness_and_report(encoder, config, _WORKDIR.value)
        else:
            cli.evaluate_and_report(encoder, config, _WORKDIR.value, passes)
    except cli.USER_ERRORS as err:
        cli.fail("invcl-evaluate", err)


def run():
    """Console-script entry point (``invcl-evaluate``)."""
    app.run(main, flags_parser=cli.flags_parser("invcl-evaluate"))


if __name__ == "__main__":
    run()
