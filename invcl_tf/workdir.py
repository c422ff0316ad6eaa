"""The layout of a run's directory, and writes that never leave a half-written file."""

import json
import os

import keras
from absl import logging

from invcl_tf import errors, stored_configs
from invcl_tf.models.rebuild import rebuilt

CONFIG_FILE = "config.json"
ENCODER_FILE = "encoder.keras"
HEAD_FILE = "head.keras"
EXPORT_DIR = "export"
CHECKPOINT_DIR = "checkpoints"
TENSORBOARD_DIR = "tensorboard"
MONITOR_FILE = "monitor.json"


class WorkdirError(errors.UserError, RuntimeError):
    """The workdir cannot hold or does not hold the run; the message says what to do."""


def atomic_write_text(path, text):
    """Writes ``text`` to ``path`` through a temporary file and a rename."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def read_json(path):
    """The JSON object in ``path``, or None if there is no such file."""
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def save_model(model, path):
    """Saves a Keras model to a ``.keras`` ``path`` through a temporary file and a rename."""
    tmp = path[:-len(".keras")] + ".tmp.keras"
    model.save(tmp)
    os.replace(tmp, path)


def check_resume(workdir, config):
    """Raises ``WorkdirError`` when ``workdir`` holds a run with a config that ``config`` may
    not resume (``stored_configs.RESUMABLE_CHANGES``); returns the allowed changed fields.
    Writes nothing."""
    stored = read_json(os.path.join(workdir, CONFIG_FILE))
    if stored is None:
        return []
    refused, allowed = stored_configs.training_changes(
        stored, json.loads(stored_configs.to_json(config)))
    if refused:
        longer = ("; train.epochs cannot change on a run (its learning rate decays to zero over "
                  "the epochs it started with): train longer in a new --workdir"
                  if "train.epochs" in refused else "")
        raise WorkdirError(
            f"--workdir {workdir} holds a run with a different config (fields: "
            f"{', '.join(refused)}); use a new --workdir, or the stored config to resume"
            f"{longer}")
    return allowed


def prepare(workdir, config):
    """Creates ``workdir`` and writes ``config.json``, or checks that a stored one matches.

    A stored config may differ in fields that do not change what training computes
    (``stored_configs.RESUMABLE_CHANGES``): the run goes on, says so, and stores the new
    values. Any other difference is refused, and nothing is written.
    """
    allowed = check_resume(workdir, config)
    try:
        os.makedirs(workdir, exist_ok=True)
        probe = os.path.join(workdir, ".write_test")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as err:
        raise WorkdirError(f"--workdir {workdir} is not writable ({err.strerror}); "
                           "choose a directory you can write to") from err
    path = os.path.join(workdir, CONFIG_FILE)
    if os.path.exists(path):
        if not allowed:
            return
        logging.warning("resuming %s with changed fields that do not change training: %s",
                        workdir, ", ".join(allowed))
    atomic_write_text(path, stored_configs.to_json(config))


def load_config(workdir):
    """The config stored in ``workdir``."""
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        raise WorkdirError(f"--workdir {workdir} holds no {CONFIG_FILE}: train there first "
                           "with invcl-train --workdir=" + workdir)
    with open(path) as f:
        return stored_configs.from_json(f.read())


def load_encoder(workdir, filename=ENCODER_FILE):
    """The trained encoder (or, with ``filename=HEAD_FILE``, head) saved in ``workdir``,
    computing in float32: a file saved after mixed-precision training keeps its layers'
    16-bit policies, which would otherwise evaluate and export in 16 bits unannounced."""
    path = os.path.join(workdir, filename)
    if not os.path.exists(path):
        raise WorkdirError(f"--workdir {workdir} holds no trained model ({filename}): "
                           "finish training there first with invcl-train --workdir=" + workdir)
    return rebuilt(keras.saving.load_model(path, compile=False), plain=False,
                   dtype="float32")
