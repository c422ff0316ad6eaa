"""On a user's class folders: size limits, probe splits and the tuner's partition keep every
class, and training reads only the examples its part holds."""

import os

import numpy as np
import pytest
from PIL import Image

from invcl_tf import eval_protocol
from invcl_tf.data import pipeline, sources
from tests.repo_configs import images as images_config

_COLOURS = np.array([(230, 20, 20), (20, 230, 20), (20, 20, 230), (230, 230, 20)])


def _class_folder(root, per_class=20, test_per_class=10):
    """Four classes told apart by red and green, stored class by class as a folder is; the
    blue channel holds each image's code, unique over both splits."""
    code = 0
    for split, count in (("train", per_class), ("test", test_per_class)):
        for c, colour in enumerate(_COLOURS):
            for i in range(count):
                pixel = np.array([colour[0], colour[1], code], np.uint8)
                path = os.path.join(root, split, f"class{c}", f"img{i:03d}.png")
                os.makedirs(os.path.dirname(path), exist_ok=True)
                Image.fromarray(np.broadcast_to(pixel, (12, 12, 3)).copy()).save(path)
                code += 1
    return str(root)


def _config(root, **dataset):
    config = images_config.get_config("tiny")
    config.dataset.path = root
    config.dataset.train_size = 1000
    config.dataset.test_size = 1000
    for name, value in dataset.items():
        config.dataset[name] = value
    return config


def _read(images):
    """(class by colour, code) of every image of a ``StreamedImages``, in order."""
    pixels = np.concatenate([b.numpy()[:, 0, 0] for b in images.batches(64)]).astype(int)
    classes = [int(np.argmin(np.abs(_COLOURS[:, :2] - p[:2]).sum(1))) for p in pixels]
    return np.array(classes), pixels[:, 2]


def _counts(labels):
    return np.bincount(np.asarray(labels), minlength=4).tolist()


def test_the_probe_split_of_class_folders_holds_every_class(tmp_path):
    data = sources.load(_config(_class_folder(tmp_path)))
    split = eval_protocol.evaluation_split(data, _config(str(tmp_path)))
    # probe_fraction 0.5 of 80 training images: 10 per class (the first 40 paths: 20, 20, 0, 0).
    assert _counts(split["probe_y"]) == [10, 10, 10, 10]
    assert _counts(split["test_y"]) == [10, 10, 10, 10]
    for x, y in ((split["probe_x"], split["probe_y"]), (split["test_x"], split["test_y"])):
        classes, codes = _read(x)
        np.testing.assert_array_equal(classes, y)  # the labels are those of the images read
        assert len(set(codes.tolist())) == len(codes)


def test_size_limits_draw_per_class_and_training_reads_only_the_drawn(tmp_path):
    root = _class_folder(tmp_path)
    config = _config(root, train_size=40, test_size=8)
    data = sources.load(config)
    assert _counts(data.train_y) == [10] * 4 and _counts(data.test_y) == [2] * 4
    classes, codes = _read(data.train_x)
    np.testing.assert_array_equal(classes, data.train_y)
    ds = pipeline.train_dataset(data.train_x, data.transform, 8, 0, 0, 0, 2)
    seen = np.concatenate([np.round(b["x1"].numpy()[:, 0, 0, 2] * 255) for b in ds])
    assert set(seen.astype(int).tolist()) == set(codes.tolist())  # 2 epochs of 5 batches


def test_a_probe_split_missing_a_class_is_named_in_one_line(tmp_path, caplog):
    root = _class_folder(tmp_path, per_class=20, test_per_class=2)
    config = _config(root)
    config.eval.probe_fraction = 0.04  # 3 of 80 images for 4 classes: one class left out
    with caplog.at_level("WARNING"):
        split = eval_protocol.evaluation_split(sources.load(config), config)
    assert sorted(_counts(split["probe_y"])) == [0, 1, 1, 1]
    lines = [r.getMessage() for r in caplog.records if "lacks 1 class" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("evaluation: the probe's training split")


def test_the_tuner_never_trains_on_its_validation_images(tmp_path):
    pytest.importorskip("keras_tuner")
    from tuning.hypermodel import InvCLRHyperModel

    config = _config(_class_folder(tmp_path))
    hypermodel = InvCLRHyperModel(config, validation_fraction=0.25)
    fit_classes, fit_codes = _read(hypermodel.fit_x)
    val_classes, val_codes = _read(hypermodel.val_x)
    np.testing.assert_array_equal(val_classes, hypermodel.val_y)
    assert _counts(val_classes) == [5] * 4 and _counts(fit_classes) == [15] * 4
    assert not set(fit_codes.tolist()) & set(val_codes.tolist())
    assert sorted(fit_codes.tolist() + val_codes.tolist()) == list(range(80))
    ds = pipeline.train_dataset(hypermodel.fit_x, hypermodel.data.transform, 12, 0, 0, 0, 3)
    seen = {int(v) for b in ds for key in ("x1", "x2")
            for v in np.round(b[key].numpy()[:, 0, 0, 2] * 255)}
    assert seen == set(fit_codes.tolist())  # every fitting image, and none held out
