"""Two workers on localhost ports train a tiny config together (subprocesses; slow)."""

import json
import os
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from tests.repo_configs import config_path
from tests.test_cli import REPO, TINY

pytestmark = pytest.mark.slow


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _launch(workdir, ports, index, *flags, config=TINY):
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    env = dict(os.environ, PYTHONPATH=REPO, CUDA_VISIBLE_DEVICES="",
               TF_CONFIG=json.dumps({"cluster": cluster,
                                     "task": {"type": "worker", "index": index}}))
    return subprocess.Popen(
        [sys.executable, "-m", "invcl_tf.train", f"--config={config}", f"--workdir={workdir}",
         "--config.distribute=multi_worker", *flags],
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _flat_encoder(run):
    weights = keras.saving.load_model(run / "encoder.keras").get_weights()
    return np.concatenate([w.ravel() for w in weights])


def _run_cluster(workdir, *flags, config=TINY):
    ports = _free_ports(2)
    procs = [_launch(workdir, ports, i, *flags, config=config) for i in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    for proc, (_, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-3000:]
    return [out for out, _ in outputs]


def test_two_workers_train_and_write_one_set_of_outputs(tmp_path):
    workdir = tmp_path / "run"
    # Four steps per call of the custom loop; the one-process reference calls once a step.
    chief_out, worker_out = _run_cluster(workdir, "--config.train.steps_per_execution=4")
    assert "Linear probe, test MSE" in chief_out
    assert "Linear probe" not in worker_out
    names = sorted(os.listdir(workdir))
    assert names == ["checkpoints", "config.json", "encoder.keras", "export",
                     "feature_averaging.png", "head.keras", "monitor.json", "results.json",
                     "tensorboard"]
    checkpoints = sorted(os.listdir(workdir / "checkpoints"))
    # Numbered by global step: 8 steps an epoch.
    assert checkpoints == ["checkpoint", "ckpt-16.data-00000-of-00001", "ckpt-16.index",
                           "ckpt-8.data-00000-of-00001", "ckpt-8.index"]
    results = json.loads((workdir / "results.json").read_text())
    assert set(results["mse"]) == {"1", "2"}
    # Each worker built only its half of every global batch, with the one-device draws: the
    # weights are those of one process training on the whole batch (float32 rounding of
    # collectives and BN sums apart, which 16 steps of LARS amplify; cf. test_distribute).
    _assert_same_training(tmp_path, workdir, TINY)


def _single_process(out, config, seed, *flags):
    proc = subprocess.run(
        [sys.executable, "-m", "invcl_tf.train", f"--config={config}", f"--workdir={out}",
         "--config.distribute=none", f"--config.seed={seed}", *flags], capture_output=True,
        text=True, cwd=REPO, timeout=600,
        env=dict(os.environ, PYTHONPATH=REPO, CUDA_VISIBLE_DEVICES=""))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return _flat_encoder(out)


def _assert_same_training(tmp_path, workdir, config, *flags):
    cluster = _flat_encoder(workdir)
    same, other = (_single_process(tmp_path / f"single{seed}", config, seed, *flags)
                   for seed in (0, 1))
    distance = np.linalg.norm(cluster - same) / np.linalg.norm(same)
    # For scale: a run with another seed (its own initialisation and draws) is far away.
    assert distance < 5e-3 < 0.1 * np.linalg.norm(other - same) / np.linalg.norm(same)


def test_a_restarted_cluster_resumes_from_the_last_checkpoint(tmp_path):
    workdir = tmp_path / "run"
    flags = ("--config.train.epochs=6", "--config.eval.every_epochs=0")
    ports = _free_ports(2)
    procs = [_launch(workdir, ports, i, *flags) for i in range(2)]
    deadline = time.time() + 300
    while not (workdir / "checkpoints" / "ckpt-16.index").exists():  # epoch 2 done
        assert time.time() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.2)
    procs[1].kill()  # a worker dies; the chief cannot go on alone
    procs[0].kill()
    for p in procs:
        p.communicate()
    saved = sorted(int(n[5:-6]) for n in os.listdir(workdir / "checkpoints")
                   if n.endswith(".index"))
    chief_out, _ = _run_cluster(workdir, *flags)
    assert saved[-1] < 6 * 8, "the cluster finished before it could be stopped"
    assert saved[-1] % 8 == 0  # epoch ends only: no checkpoint_every_steps here
    assert f"Epoch {saved[-1] // 8 + 1}/6" in chief_out and "Epoch 1/6" not in chief_out
    assert (workdir / "results.json").exists()


def test_two_workers_on_array_record_tfds_match_one_process(tmp_path):
    from tests.test_image_sources import CodedImages

    data_dir = tmp_path / "tfds"
    CodedImages(data_dir=str(data_dir), file_format="array_record").download_and_prepare()
    flags = ("--config.dataset.name=tfds:coded_images",
             f"--config.dataset.data_dir={data_dir}", "--config.eval.every_epochs=0")
    images = config_path("images") + ":tiny"
    workdir = tmp_path / "run"
    _run_cluster(workdir, *flags, config=images)
    assert (workdir / "results.json").exists()

    # Each worker read only its share of every batch (tested record by record in
    # test_image_sources); together they trained what one process does.
    _assert_same_training(tmp_path, workdir, images, *flags)
