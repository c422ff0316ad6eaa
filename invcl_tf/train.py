"""Pretrains InvCLR, then evaluates: ``python -m invcl_tf.train --config=... --workdir=DIR``.

Started again on the same ``--workdir`` it resumes from the last epoch's checkpoint.
"""

from absl import flags

from invcl_tf import cli, custom_loop, pretraining

_CONFIG = cli.define_config_flag()
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and results.")


def main(argv):
    del argv
    if not _WORKDIR.value:
        cli.fail("invcl-train", "--workdir is required: pass --workdir=DIR for the run's outputs")
    config = _CONFIG.value
    model = pretraining.train(config, _WORKDIR.value)
    if custom_loop.is_chief(model.distribute_strategy):  # one set of results per cluster
        cli.evaluate_and_report(model.encoder, config, _WORKDIR.value)
        cli.export_run(_WORKDIR.value)


def run():
    """Console-script entry point (``invcl-train``)."""
    cli.run_main("invcl-train", main)


if __name__ == "__main__":
    run()
