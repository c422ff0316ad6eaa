"""Runs a seeds x λ study and writes its report: ``python -m invcl_tf.report --config=C
--output=DIR`` (``invcl-report``).

Every (seed, λ) of ``config.report`` (seeds 0–2 and λ ∈ {0, the config's λ, 0.1} unless
``--config.report.seeds`` / ``--config.report.weights`` say otherwise) is trained and evaluated
as ``invcl-train`` would, in ``DIR/runs/``; then ``DIR/README.md``, ``DIR/report.json`` and the
PNGs compare them. Started again on the same ``--output`` it skips finished runs and resumes an
interrupted one.
"""

from absl import flags

from invcl_tf import cli, configuration, experiments

_CONFIG = cli.define_config_flag()
_OUTPUT = flags.DEFINE_string("output", None, "Directory for the study's runs and report.")


def main(argv):
    del argv
    if not _OUTPUT.value:
        cli.fail("invcl-report", "--output is required: pass --output=DIR for the study")
    config = _CONFIG.value
    configuration.validate(config)
    paths = experiments.run_study(config, _OUTPUT.value)
    print("wrote " + ", ".join(paths))


def run():
    """Console-script entry point (``invcl-report``)."""
    cli.run_main("invcl-report", main)


if __name__ == "__main__":
    run()
