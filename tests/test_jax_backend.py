"""The shared math on Keras's JAX backend (in a subprocess: Keras picks its backend once per
process, and this one runs TensorFlow); see ``tests/jax_shared_math.py`` for the checks."""

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_losses_and_penalty_on_jax_without_tensorflow():
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-m", "tests.jax_shared_math"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all passed" in done.stdout
