"""Evaluates a trained run: ``python -m invcl_tf.evaluate --workdir=DIR --num_passes=1,10,30``.

Writes ``DIR/results.json`` and ``DIR/mse_vs_passes.png`` and prints a table.
"""

from absl import app, flags

from invcl_tf import cli, evaluation, reporting, workdir
from invcl_tf.data import datasets

_WORKDIR = flags.DEFINE_string("workdir", None, "A directory written by invcl-train.")
_NUM_PASSES = flags.DEFINE_list(
    "num_passes", None, "Views averaged per input, e.g. 1,10,30 (default: the run's "
    "eval.num_passes).")


def main(argv):
    del argv
    cli.quiet_logs()
    if not _WORKDIR.value:
        cli.fail("invcl-evaluate", "--workdir is required: pass the directory of a trained run")
    try:
        passes = [int(m) for m in _NUM_PASSES.value] if _NUM_PASSES.value else None
        if passes is not None and (not passes or min(passes) < 1):
            raise ValueError("--num_passes must be integers >= 1, e.g. --num_passes=1,10,30")
        config = workdir.load_config(_WORKDIR.value)
        encoder = workdir.load_encoder(_WORKDIR.value)
        results = evaluation.evaluate(encoder, datasets.load(config), config, passes)
        paths = reporting.write_results(results, _WORKDIR.value)
    except cli.USER_ERRORS as err:
        cli.fail("invcl-evaluate", err)
    print(reporting.format_table(results))
    print("wrote " + ", ".join(paths))


def run():
    """Console-script entry point (``invcl-evaluate``)."""
    app.run(main, flags_parser=cli.flags_parser("invcl-evaluate"))


if __name__ == "__main__":
    run()
