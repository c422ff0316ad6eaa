"""What the absl entry points share: the ``--config`` flag and one-line errors."""

import difflib
import os
import sys

_USER_LOG_LEVEL = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
# Before TensorFlow loads: its C++ INFO lines are noise in a CLI.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _start_tensorflow_quietly():
    """Imports TensorFlow and lists its devices with the process's stderr pointed at
    /dev/null.

    TF's C++ start-up lines go there before any logging is set up, whatever
    TF_CPP_MIN_LOG_LEVEL says: absl's "All log messages before absl::InitializeLog()", the
    oneDNN notice, "Could not find cuda drivers" and cuInit's E0000 on a machine without a GPU.
    Kept: everything after this point (TF's warnings and errors), an import that fails (it
    raises once stderr is back), and all of it when TF_CPP_MIN_LOG_LEVEL is set below 2.
    """
    if _USER_LOG_LEVEL is not None and _USER_LOG_LEVEL < "2":
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                import tensorflow as tf

                tf.config.list_physical_devices()  # cuInit reports here
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


_start_tensorflow_quietly()

import ml_collections  # noqa: E402
from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from invcl_tf import configuration, errors, eval_protocol, results_io, serving  # noqa: E402
from invcl_tf.data import sources  # noqa: E402

#: The CPU demo, found by path in the checkout the package is installed from (``pip -e``).
DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                              "configs", "spirograph_cpu.py")


def define_config_flag():
    """``--config=path.py[:variant]`` plus ``--config.field=value`` overrides, locked."""
    return config_flags.DEFINE_config_file(
        "config", DEFAULT_CONFIG, "Path to an ml_collections config file "
        "(default: the CPU demo); override fields with --config.field=value.",
        lock_config=True)


def _one_line(err):
    text = str(err).replace("\\n", " ").replace("\\", "").replace("'", "")
    return " ".join(text.split()).strip('"')


def _unknown_field(flag):
    """The line for ``--config.a.b`` when the schema has no such field (else None): the
    fields it may have meant, or those of its section."""
    *sections, field = flag[len("--config."):].split(".")
    node = configuration.base_config()
    for section in sections:
        if not isinstance(node.get(section), ml_collections.ConfigDict):
            return None
        node = node[section]
    if field in node:
        return None
    where = ".".join(sections)
    close = difflib.get_close_matches(field, list(node), n=3)
    hint = (f"did you mean {' or '.join(f'--config.{where}.{c}' for c in close)}?" if close
            else f"the fields of {where or 'the config'} are {', '.join(sorted(node))}")
    return f"{flag}: no such config field; {hint}"


def flags_parser(program):
    """An ``app.run`` flags parser that reports a bad flag or config override in one line."""

    def parse(argv):
        try:
            args = flags.FLAGS(argv)
            if "config" in flags.FLAGS:  # a missing config file fails here, not in main
                flags.FLAGS["config"].value.to_dict()
        except Exception as err:  # noqa: BLE001 - absl and ml_collections raise many kinds
            detail = _one_line(err)
            culprit = next((a.split("=")[0] for a in argv[1:] if a.startswith("--config.")
                            and a.split("=")[0].rsplit(".", 1)[-1] in detail), None)
            unknown = culprit and _unknown_field(culprit)
            if unknown:
                fail(program, unknown)
            fail(program, f"{culprit + ': ' if culprit else ''}{detail} (fix the flag; "
                 "--helpfull lists flags, the config file lists its fields)")
        return args

    return parse


def quiet_logs():
    """Keeps absl's INFO lines (checkpoint bookkeeping) out of the progress bar."""
    logging.set_verbosity(logging.WARNING)


def evaluate_and_report(encoder, config, run_dir, num_passes=None):
    """Evaluates ``encoder``, writes ``results.json`` and its plot to ``run_dir``, prints them."""
    results = eval_protocol.evaluate(encoder, sources.load(config), config, num_passes)
    paths = results_io.write_results(results, run_dir)
    print(results_io.format_table(results))
    print("wrote " + ", ".join(paths))


def robustness_and_report(encoder, config, run_dir):
    """Runs the test-time nuisance sweeps, writes ``robustness.json`` and its plot, prints."""
    data = sources.load(config)
    sweeps = sources.robustness_sweeps(data, config)
    found = eval_protocol.robustness(encoder, data, config, sweeps)
    paths = results_io.write_robustness(found, run_dir)
    print(results_io.format_robustness(found))
    print("wrote " + ", ".join(paths))


def export_run(run_dir, output=None):
    """Exports the run in ``run_dir`` as an inference SavedModel (default ``run_dir/export``)."""
    path = serving.export_run(run_dir, output)
    print(f"exported SavedModel to {path}")
    return path


def run_main(program, main):
    """``app.run(main)`` for ``program``: bad flags and ``UserError``s become one line and
    exit code 1; any other exception is a bug and keeps its traceback."""

    def guarded(argv):
        quiet_logs()
        try:
            main(argv)
        except errors.UserError as err:
            fail(program, err)

    app.run(guarded, flags_parser=flags_parser(program))


def fail(program, err):
    """Prints one line naming the problem and exits non-zero."""
    print(f"{program}: error: {err}", file=sys.stderr)
    sys.exit(1)
