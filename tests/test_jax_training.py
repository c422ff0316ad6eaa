"""Training on JAX without TensorFlow (in a subprocess: Keras picks its backend once per
process; see ``tests/jax_training.py`` for its checks), and the model it trained loaded,
evaluated and exported as a SavedModel under TensorFlow."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from invcl_tf import serving, workdir
from tests.repo_configs import REPO, spirograph_cpu

pytestmark = pytest.mark.slow


def test_training_on_jax_resumes_bit_for_bit_and_splits_over_devices(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "PYTHONPATH": REPO,
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    for argument in (str(tmp_path), "--distribution"):
        done = subprocess.run([sys.executable, "-m", "tests.jax_training", argument], cwd=REPO,
                              env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stdout + done.stderr[-3000:]
        assert "all passed" in done.stdout
    # Trained on JAX, loaded, evaluated and exported on TensorFlow.
    config = spirograph_cpu.get_config("tiny")
    config.model.width_multiplier = 1 / 16  # the JAX run's encoder
    workdir.prepare(str(tmp_path), config)
    want = np.load(tmp_path / "outputs.npz")
    encoder = workdir.load_encoder(str(tmp_path))
    head = workdir.load_encoder(str(tmp_path), workdir.HEAD_FILE)
    h = np.asarray(encoder(want["images"], training=False))
    assert np.abs(h - want["h"]).max() < 1e-5 * np.abs(want["h"]).max()
    z = np.asarray(head(h, training=False))
    assert np.abs(z - want["z"]).max() < 1e-5 * np.abs(want["z"]).max()
    served = tf.saved_model.load(serving.export_run(str(tmp_path)))
    got = served.signatures["serving_default"](images=tf.constant(want["images"]))
    (got,) = got.values()
    assert np.abs(got.numpy() - want["h"]).max() < 1e-5 * np.abs(want["h"]).max()
