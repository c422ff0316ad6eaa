"""A folder of the user's images, end to end: train, resume mid-epoch, evaluate, export."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from invcl_tf import pretraining, stored_configs, workdir
from invcl_tf.transforms import spirograph
from tests.interrupts import StopAtStep
from tests.repo_configs import REPO, config_path, images as images_config

pytestmark = pytest.mark.slow


def _write_pngs(directory, images, names):
    os.makedirs(directory, exist_ok=True)
    for image, name in zip(images, names):
        tf.io.write_file(os.path.join(directory, name),
                         tf.io.encode_png(tf.image.convert_image_dtype(image, tf.uint8)))


def spirograph_folder(root, per_class=24, test_per_class=8, size=40, labelled=True):
    """Rendered Spirograph images as PNG files, two classes by the target m (m < 3.5 or not),
    at ``size`` px (not the training resolution, so decoding resizes)."""
    targets = spirograph.sample_targets([5, 6], 4 * (per_class + test_per_class))
    images = spirograph.render(targets, spirograph.sample_nuisance([5, 7], [len(targets)]))
    images = tf.image.resize(images, [size, size]).numpy().clip(0, 1)
    classes = np.where(targets.numpy()[:, 0] < 3.5, "low_m", "high_m")
    counts = {"train": per_class, "test": test_per_class}
    used = {}
    for i, (image, label) in enumerate(zip(images, classes)):
        for split, count in counts.items():
            if used.get((split, label), 0) < count:
                used[(split, label)] = used.get((split, label), 0) + 1
                where = os.path.join(root, split, label) if labelled else os.path.join(root,
                                                                                       split)
                _write_pngs(where, [image], [f"img{i:04d}.png"])
                break
    return root


def _config(path, **changes):
    config = images_config.get_config("tiny")
    config.dataset.path = str(path)
    config.eval.every_epochs = 0
    for key, value in changes.items():
        section, field = key.split("__")
        setattr(getattr(config, section), field, value)
    return config


def test_a_run_killed_inside_an_epoch_resumes_to_the_uninterrupted_weights(tmp_path):
    folder = spirograph_folder(tmp_path / "images")
    config = _config(folder, train__epochs=2, train__checkpoint_every_steps=2)
    full = pretraining.train(config, str(tmp_path / "full"), verbose=0)
    assert int(full.optimizer.iterations) == 2 * (48 // 16)  # 3 steps an epoch
    stored = json.loads((tmp_path / "full" / workdir.CONFIG_FILE).read_text())
    assert len(stored["dataset"]["mean"]) == 3 and stored["dataset"]["decode_size"] == 32
    with pytest.raises(KeyboardInterrupt):
        pretraining.train(config, str(tmp_path / "resumed"), verbose=0,
                          extra_callbacks=[StopAtStep(5)])
    checkpoints = tmp_path / "resumed" / workdir.CHECKPOINT_DIR
    latest = tf.train.latest_checkpoint(str(checkpoints))
    assert latest.endswith("ckpt-4")  # every 2 steps and at epoch ends (3): step 4 is mid-epoch
    resumed = pretraining.train(config, str(tmp_path / "resumed"), verbose=0)
    assert int(resumed.optimizer.iterations) == int(full.optimizer.iterations) == 6
    for a, b in zip(full.encoder.weights, resumed.encoder.weights):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=600)


def test_from_a_folder_to_an_encoder_its_evaluation_and_its_export(tmp_path):
    folder = spirograph_folder(tmp_path / "images")
    run = tmp_path / "run"
    proc = _cli("invcl_tf.train", f"--config={config_path('images')}:tiny",
                f"--config.dataset.path={folder}", f"--workdir={run}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.load(open(run / "results.json"))
    assert results["task"] == "classification" and set(results["accuracy"]) == {"1", "2"}
    assert results["probe_inputs"] == "train_split"  # not Spirograph's "pretraining"
    assert results["num_test"] == 16 and results["num_probe_train"] == 24
    model = tf.saved_model.load(str(run / "export"))
    spec = model.signatures["serving_default"].structured_input_signature[1]["images"]
    assert spec.shape.as_list() == [None, 32, 32, 3]
    images = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype(np.float32)
    assert model.encode(images).shape[0] == 2


def test_a_flat_folder_reports_the_label_free_metrics(tmp_path):
    folder = spirograph_folder(tmp_path / "images", labelled=False)
    run = tmp_path / "run"
    proc = _cli("invcl_tf.train", f"--config={config_path('images')}:tiny",
                f"--config.dataset.path={folder}", f"--workdir={run}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.load(open(run / "results.json"))
    assert results["task"] == "unlabelled" and "accuracy" not in results
    for key in ("conditional_variance", "total_variance", "penalty_estimate", "nuisance_mse"):
        assert np.isfinite(results[key])
    assert "label-free metrics only" in proc.stdout


def test_a_missing_folder_gets_one_line(tmp_path):
    proc = _cli("invcl_tf.train", f"--config={config_path('images')}:tiny",
                f"--config.dataset.path={tmp_path / 'nowhere'}", f"--workdir={tmp_path / 'run'}")
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.startswith("invcl-train")]
    assert len(lines) == 1 and "--config.dataset.path" in lines[0], proc.stderr[-2000:]
    assert not (tmp_path / "run").exists()


def test_a_workers_share_reads_only_its_files_and_matches_the_whole_batch(tmp_path):
    from invcl_tf.data import draws, pipeline, sources

    folder = spirograph_folder(tmp_path / "images")
    config = _config(folder)
    data = sources.load(config)
    split = data.train_x.split
    transform = data.transform
    batch = 16  # 48 training images: 3 steps an epoch
    whole = list(pipeline.train_dataset(data.train_x, transform, batch, 2, 5, 0, 1))
    # The files of rows [8, 16) of every batch of epoch 0 go away: the share [0, 8) must not
    # read them (a whole-batch reader would fail on the first missing file).
    epoch_seed = draws.fold(draws.fold(5, draws.STREAM_TRAIN), 0)
    order = split._order(epoch_seed).numpy()[:3 * batch].reshape(3, batch)
    manifest = open(split.manifest).read().splitlines()
    for index in order[:, 8:].ravel():
        os.remove(manifest[index])
    share = list(pipeline.train_dataset(data.train_x, transform, batch, 2, 5, 0, 1,
                                        rows=(0, 8)))
    assert len(share) == len(whole) == 3
    for full, mine in zip(whole, share):
        for key in full:
            np.testing.assert_array_equal(mine[key].numpy(), full[key].numpy()[:8], err_msg=key)


def test_a_larger_resolution_takes_the_imagenet_stem_and_exports_at_its_size(tmp_path):
    from invcl_tf import serving
    from invcl_tf.data import sources

    folder = spirograph_folder(tmp_path / "images", size=100)
    config = _config(folder, dataset__image_size=96, train__epochs=1)
    model = pretraining.train(config, str(tmp_path / "run"), verbose=0)
    assert model.encoder.input_shape == (None, 96, 96, 3)
    assert "stem_pool" in [layer.name for layer in model.encoder.layers]  # auto: > 64 px
    data = sources.load(config)
    transform, shape = sources.transform_for(config)
    assert shape == (96, 96, 3) and transform.image_size == 96
    first = next(iter(data.train_x.batches(4)))
    assert first.shape == (4, 96, 96, 3) and first.dtype == tf.uint8
    path = serving.export(model.encoder, model.head, transform, shape, "{}",
                          str(tmp_path / "export"))
    loaded = tf.saved_model.load(path)
    images = np.random.default_rng(1).uniform(size=(2, 96, 96, 3)).astype(np.float32)
    np.testing.assert_allclose(loaded.encode(images),
                               model.encoder(transform.normalize_images(images)), rtol=1e-4,
                               atol=1e-5)
    assert loaded.encode_averaged(tf.cast(first, tf.float32) / 255.0, 2, 0).shape[0] == 4


def test_penalised_geometry_trains_evaluates_and_exports_from_uncropped_images(tmp_path):
    from invcl_tf import eval_protocol, feature_averaging, serving
    from invcl_tf.data import draws, pipeline, sources

    folder = spirograph_folder(tmp_path / "images", size=40)
    config = _config(folder, dataset__decode_size=40, dataset__rotation=15.0,
                     dataset__shift=0.05, gp__covers="color+geometry", train__epochs=1)
    data = sources.load(config)
    transform = data.transform
    assert transform.num_params == 4 + 3 + 4 and transform.image_size == 32
    batch = next(iter(pipeline.train_dataset(data.train_x, transform, 16, 2, 0, 0, 1)))
    assert batch["x1"].shape == (16, 40, 40, 3)  # the pipeline hands over uncropped images
    assert batch["alpha_extra"].shape == (16, 2, 11)
    model = pretraining.train(config, str(tmp_path / "run"), verbose=0)
    assert np.isfinite(float(model.compute_losses(batch)["penalty"]))
    results = eval_protocol.evaluate(model.encoder, data, config)
    assert np.isfinite(results["penalty_estimate"]) and "1" in results["accuracy"]
    assert set(results) >= {"color_only", "untransformed"}  # variants: colour, no crop
    # The nuisance probe predicts all eleven parameters, geometry included.
    views = feature_averaging.ViewEncoder(model.encoder, transform, 8)
    _, alpha = views.encode(data.test_x, draws.fold(0, 1))
    assert alpha.shape == (16, 11)
    # The test-time sweeps rotate and shift whole 40-pixel images resized to 32; at v = 0
    # the views are the untransformed ones.
    sweeps = sources.robustness_sweeps(data, config)
    found = eval_protocol.robustness(model.encoder, data, config, sweeps)
    assert set(found) == {"color_strength", "rotation", "shift"}
    assert [p["value"] for p in found["rotation"]] == [90.0]
    assert all(0 <= p["accuracy"] <= 1 for p in found["rotation"] + found["shift"])
    zero = sources.robustness_sweeps(data, stored_configs.with_overrides(
        config, {"eval.rotation_values": (0.0,)}))["rotation"][0][1]
    seed = draws.fold(0, 2)
    h_zero, _ = feature_averaging.ViewEncoder(model.encoder, zero, 8).encode(data.test_x, seed)
    h_plain, _ = feature_averaging.ViewEncoder(
        model.encoder, data.eval_transforms["untransformed"], 8).encode(data.test_x, seed)
    np.testing.assert_allclose(h_zero, h_plain, rtol=1e-4, atol=1e-4)
    _, shape = sources.transform_for(config)
    path = serving.export(model.encoder, model.head, transform, shape, "{}",
                          str(tmp_path / "export"))
    loaded = tf.saved_model.load(path)
    first = tf.cast(next(iter(data.test_x.batches(4))), tf.float32) / 255.0
    assert first.shape == (4, 40, 40, 3)
    assert loaded.encode_averaged(first, 3, 0).shape == (4, model.encoder.output_shape[-1])
