"""Exports a trained run for serving: ``python -m invcl_tf.export --workdir=DIR --output=PATH``.

The SavedModel's endpoints are described in ``invcl_tf.serving.export``.
"""

from absl import flags

from invcl_tf import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "A directory written by invcl-train.")
_OUTPUT = flags.DEFINE_string("output", None, "Where to write the SavedModel "
                              "(default: DIR/export).")


def main(argv):
    del argv
    if not _WORKDIR.value:
        cli.fail("invcl-export", "--workdir is required: pass the directory of a trained run")
    cli.export_run(_WORKDIR.value, _OUTPUT.value)


def run():
    """Console-script entry point (``invcl-export``)."""
    cli.run_main("invcl-export", main)


if __name__ == "__main__":
    run()
