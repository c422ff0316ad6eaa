"""What the absl entry points share: the ``--config`` flag and one-line errors."""

import os
import sys

# Before TensorFlow loads: its C++ start-up banners are noise in a CLI.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

import configs  # noqa: E402
from invcl_tf import configuration, workdir  # noqa: E402
from invcl_tf.training import NonFiniteLossError  # noqa: E402

DEFAULT_CONFIG = os.path.join(os.path.dirname(configs.__file__), "spirograph_cpu.py")

#: Errors that carry a message for the user; anything else is a bug and keeps its traceback.
USER_ERRORS = (configuration.ConfigError, workdir.WorkdirError, NonFiniteLossError, ValueError)


def define_config_flag():
    """``--config=path.py[:variant]`` plus ``--config.field=value`` overrides, locked."""
    return config_flags.DEFINE_config_file(
        "config", DEFAULT_CONFIG, "Path to an ml_collections config file "
        "(default: the CPU demo); override fields with --config.field=value.",
        lock_config=True)


def quiet_logs():
    """Keeps absl's INFO lines (checkpoint bookkeeping) out of the progress bar."""
    logging.set_verbosity(logging.WARNING)


def fail(program, err):
    """Prints one line naming the problem and exits non-zero."""
    print(f"{program}: error: {err}", file=sys.stderr)
    sys.exit(1)
