"""The TensorFlow and JAX training steps compute the same thing: on the same float64 weights
and batch, every loss, weight gradient and new batch-norm statistic agrees to 1e-6 relative
(measured: about 1e-13). Each backend runs ``tests/backend_step.py`` in its own process."""

import os
import subprocess
import sys

import numpy as np
import pytest

from tests.repo_configs import REPO

pytestmark = pytest.mark.slow


def _run(mode, case, directory, backend):
    env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu",
           "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": REPO}
    done = subprocess.run([sys.executable, "-m", "tests.backend_step", mode, case,
                           str(directory)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize("case", ["spirograph", "spirograph_geometry"])
def test_the_jax_step_equals_the_tensorflow_step_in_float64(tmp_path, case):
    assert "tensorflow imported: True" in _run("write", case, tmp_path, "tensorflow")
    assert "tensorflow imported: False" in _run("read", case, tmp_path, "jax")
    tf_out = dict(np.load(tmp_path / f"{case}_tensorflow.npz"))
    jax_out = dict(np.load(tmp_path / f"{case}_jax.npz"))
    assert sorted(tf_out) == sorted(jax_out)
    kinds = {name.split(":")[0] for name in tf_out}
    assert kinds == {"loss", "grad", "state"}
    # Nothing trivially equal: a penalty that counts, gradients and statistics that moved.
    assert tf_out["loss:penalty"] > 1.0
    inputs = np.load(tmp_path / f"{case}_inputs.npz")
    for name, want in tf_out.items():
        assert np.abs(want).max() > 0, name
        if name.startswith("state:"):
            assert not np.allclose(want, inputs["w:" + name[len("state:"):]]), name
        got = jax_out[name]
        error = np.abs(got - want).max() / np.abs(want).max()
        assert error < 1e-6, (name, error)
