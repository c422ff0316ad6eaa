"""CIFAR through TFDS: the missing-data error, and training + evaluation on TFDS mock data."""

import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tests.repo_configs import cifar10, cifar100
from invcl_tf import eval_protocol, pretraining, serving, stored_configs
from invcl_tf.data import sources
from tests.test_cli import _error_lines, _run


def test_missing_data_names_the_data_dir_and_tfds_build(tmp_path):
    with pytest.raises(sources.DataError, match=r"--config.dataset.data_dir.*tfds build cifar10"):
        config = cifar10.get_config("tiny")
        config.dataset.data_dir = str(tmp_path / "tfds")
        sources.cifar_source(config)
    assert not os.listdir(tmp_path)


def test_training_with_missing_data_writes_nothing(tmp_path):
    config = cifar10.get_config("tiny")
    config.dataset.data_dir = str(tmp_path / "tfds")
    with pytest.raises(sources.DataError):
        pretraining.train(config, str(tmp_path / "run"), verbose=0)
    assert not os.listdir(tmp_path)


@pytest.mark.slow
def test_cli_with_missing_data_gives_one_line(tmp_path):
    proc = _run("invcl_tf.train", f"--config={cifar10.__file__}:tiny",
                f"--workdir={tmp_path / 'run'}", f"--config.dataset.data_dir={tmp_path}")
    assert proc.returncode != 0
    (line,) = _error_lines(proc)
    assert "--config.dataset.data_dir" in line and "tfds build cifar10" in line
    assert not (tmp_path / "run").exists()


def test_load_reads_images_labels_and_builds_the_transforms():
    config = cifar100.get_config("tiny")
    with tfds.testing.mock_data(num_examples=80):
        data = sources.load(config)
        first = next(iter(data.train_x.batches(64)))  # streamed, read in TFDS's order
    assert len(data.train_x) == 64 and len(data.test_x) == 32
    assert first.shape == (64, 32, 32, 3) and first.dtype == tf.uint8
    assert data.test_y.shape == (32,) and data.test_y.dtype == np.int64
    assert len(data.label_names) == 100 and data.task == "classification"
    np.testing.assert_allclose(data.transform.mean, (0.5071, 0.4865, 0.4409))
    untransformed = data.eval_transforms["untransformed"]
    assert not untransformed.crop and untransformed.p_jitter == 0.0
    assert data.eval_transforms["color_only"].p_jitter == 0.8


def test_train_and_evaluate_on_mock_data(tmp_path):
    config = cifar10.get_config("tiny")
    with tfds.testing.mock_data(num_examples=80):  # streamed data is read inside the mock
        model = pretraining.train(config, str(tmp_path), verbose=0)
        data = sources.load(config)
        results = eval_protocol.evaluate(model.encoder, data, config)
        found = eval_protocol.robustness(
            model.encoder, data, config,
            sources.robustness_sweeps(data, config))
        images = next(iter(data.test_x.batches(4))).numpy().astype("float32") / 255.0
    assert np.isfinite(model.history.history["loss"]).all()
    assert "monitor_probe_accuracy" in model.history.history
    assert set(results["accuracy"]) == {"1", "2"}
    assert 0.0 <= results["accuracy"]["2"] <= 1.0 and results["cross_entropy"]["1"] > 0
    assert set(results["untransformed"]["accuracy"]) == {"1"}
    assert set(results["color_only"]["accuracy"]) == {"1", "2"}
    assert results["nuisance_mse_baseline"] == pytest.approx(0.0408, abs=1e-4)
    assert results["penalty_estimate"] > 0 and results["conditional_variance"] >= 0
    assert [p["value"] for p in found["color_strength"]] == [0.0, 1.0]
    assert all(0.0 <= p["accuracy"] <= 1.0 for p in found["color_strength"])
    assert [p["value"] for p in found["rotation"]] == [90.0]
    assert [p["value"] for p in found["shift"]] == [0.1]

    # The export normalises inside and averages over crop + flip + jitter views in the graph.
    path = serving.export(model.encoder, model.head, data.transform, (32, 32, 3),
                          stored_configs.to_json(config), str(tmp_path / "export"))
    module = tf.saved_model.load(path)
    np.testing.assert_allclose(module.encode(images),
                               model.encoder(data.transform.normalize_images(images)),
                               rtol=1e-5, atol=1e-5)
    averaged = module.encode_averaged(images, 3, 5)
    np.testing.assert_allclose(averaged, serving.averaged_representation(
        model.encoder, data.transform, images, 3, 5), rtol=1e-5, atol=1e-5)
    assert not np.allclose(averaged, module.encode(images))
