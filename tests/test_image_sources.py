"""Streaming image sources: folders of files and TFDS splits, decoding, epochs, errors."""

import os
import zlib

import ml_collections
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from etils import epath
from PIL import Image

from invcl_tf.data import image_sources, image_splits, sources, subsets
from invcl_tf.data.pipeline import fold


def _config(**dataset):
    config = ml_collections.ConfigDict()
    config.dataset = ml_collections.ConfigDict({"decode_size": 8, **dataset})
    return config


def _save(path, array, **kwargs):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8)).save(path, **kwargs)


def _solid(color, shape=(6, 10)):
    return np.broadcast_to(np.asarray(color, np.uint8), (*shape, 3))


def _coded(i, shape=(5, 7)):
    """An image whose colour encodes ``i`` exactly (PNG, solid: decoding keeps it)."""
    return _solid((i % 256, i // 256, 7), shape)


def _codes(images):
    images = np.asarray(images)
    assert (images == images[:, :1, :1]).all()  # still solid
    return [int(r) + 256 * int(g) for r, g in images[:, 0, 0, :2]]


def _images(ds):
    return np.stack(list(ds.as_numpy_iterator()))


def _epochs(split, seed, count=2):
    ds = tf.data.Dataset.range(count).flat_map(lambda e: split.epoch(fold(seed, e)))
    return _images(ds).reshape(count, split.num_examples, *split.ordered().element_spec.shape)


def _error(config):
    with pytest.raises(sources.DataError) as info:
        image_sources.load_image_source(config)
    message = str(info.value)
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------------------------
# Folders


def test_labelled_train_and_test_folders(tmp_path):
    colors = {"train/cat/a.png": (255, 0, 0), "train/cat/b.BMP": (0, 255, 0),
              "train/cat/sub/c.gif": (0, 0, 255), "train/dog/d.jpg": (255, 255, 0),
              "train/dog/e.JPEG": (0, 255, 255), "test/cat/f.png": (255, 0, 255),
              "test/dog/g.png": (255, 255, 255)}
    for rel, color in colors.items():
        _save(str(tmp_path / rel), _solid(color, (9 + len(rel) % 3, 12)))
    (tmp_path / "train" / "cat" / "notes.txt").write_text("not an image")
    _save(str(tmp_path / "train" / "dog" / "._d.jpg"), _solid((1, 2, 3)))  # hidden: skipped

    train, test, names = image_sources.load_image_source(
        _config(name="folder", path=str(tmp_path), decode_size=6))
    assert names == ("cat", "dog")
    assert train.num_examples == 5 and test.num_examples == 2
    np.testing.assert_array_equal(train.labels, [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(test.labels, [0, 1])
    assert train.labels.dtype == np.int64
    images = _images(train.ordered())
    assert images.shape == (5, 6, 6, 3) and images.dtype == np.uint8
    # Sorted by relative path; solid colours survive resizing (JPEG/GIF within their loss).
    expected = [colors[k] for k in sorted(k for k in colors if k.startswith("train/"))]
    np.testing.assert_allclose(images.reshape(5, -1, 3).mean(1), expected, atol=4)
    np.testing.assert_array_equal(_images(test.ordered())[:, 0, 0], [(255, 0, 255)] * 1 +
                                  [(255, 255, 255)])

    limited, _, _ = image_sources.load_image_source(
        _config(name="folder", path=str(tmp_path), train_size=3))
    assert limited.num_examples == 3 and len(_images(limited.ordered())) == 3
    # Drawn per class, not the first three paths (all cats): 3 of (3 cats, 2 dogs) is one
    # each, then the larger remainder (cat: 2·1/3 against dog: 1·1/3).
    np.testing.assert_array_equal(limited.labels, [0, 0, 1])


def test_grayscale_folder_is_replicated_to_three_equal_channels(tmp_path):
    for split in ("train", "test"):
        for i in range(2):
            _save(str(tmp_path / split / f"{i}.png"), np.full((7, 9), 40 + 50 * i, np.uint8))
    train, test, names = image_sources.load_image_source(
        _config(name="folder", path=str(tmp_path), decode_size=5))
    assert names is None and train.labels is None and test.labels is None
    images = _images(train.ordered())
    assert images.shape == (2, 5, 5, 3)
    np.testing.assert_array_equal(images[..., 0], images[..., 1])
    np.testing.assert_array_equal(images[..., 0], images[..., 2])
    np.testing.assert_array_equal(images[:, 0, 0, 0], [40, 90])


def test_shorter_side_resized_then_centre_cropped():
    # A horizontal ramp valued 10·c at pixel centre c. Halving the width with the (symmetric)
    # antialiased bilinear kernel keeps a ramp: output pixel i is 10·(2i + 1) = 20i + 10; the
    # centre crop keeps i = 2..5 of 8, well away from the borders.
    ramp = 10.0 * (np.arange(16) + 0.5)
    wide = np.stack([np.tile(ramp, (8, 1)), np.full((8, 16), 100.0),
                     200.0 - np.tile(ramp, (8, 1))], -1).astype(np.uint8)
    out = image_sources.decode(tf.io.encode_png(wide), 4).numpy()
    assert out.shape == (4, 4, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., 0], np.tile([50, 70, 90, 110], (4, 1)))
    np.testing.assert_array_equal(out[..., 1], 100)
    np.testing.assert_array_equal(out[..., 2], np.tile([150, 130, 110, 90], (4, 1)))
    tall = image_sources.decode(tf.io.encode_png(np.transpose(wide, (1, 0, 2))), 4).numpy()
    np.testing.assert_array_equal(tall, np.transpose(out, (1, 0, 2)))


def test_alpha_is_dropped_and_gray_alpha_replicated():
    rgba = np.concatenate([_solid((10, 20, 30), (4, 4)), np.full((4, 4, 1), 77, np.uint8)], -1)
    np.testing.assert_array_equal(image_sources.decode(tf.io.encode_png(rgba), 4)[0, 0],
                                  (10, 20, 30))
    gray_alpha = np.stack([np.full((4, 4), 60, np.uint8), np.full((4, 4), 200, np.uint8)], -1)
    np.testing.assert_array_equal(image_sources.decode(tf.io.encode_png(gray_alpha), 4)[0, 0],
                                  (60, 60, 60))


def _flat_folder(root, n, start=0):
    for i in range(start, start + n):
        _save(str(root / f"img{i:04d}.png"), _coded(i))


def test_flat_folder_has_a_deterministic_stable_holdout(tmp_path):
    _flat_folder(tmp_path, 300)
    config = _config(name="folder", path=str(tmp_path), holdout_fraction=0.1)
    train, test, names = image_sources.load_image_source(config)
    assert names is None and train.labels is None and test.labels is None
    train_ids, test_ids = _codes(_images(train.ordered())), _codes(_images(test.ordered()))
    assert train_ids == sorted(train_ids) and test_ids == sorted(test_ids)  # path order
    assert not set(train_ids) & set(test_ids) and len(train_ids) + len(test_ids) == 300
    assert 15 <= len(test_ids) <= 50  # ~30
    expected = [i for i in range(300) if zlib.crc32(f"img{i:04d}.png".encode()) % 10_000 < 1000]
    assert test_ids == expected and test.num_examples == len(expected)

    again = image_sources.load_image_source(config)[1]
    assert _codes(_images(again.ordered())) == test_ids
    _flat_folder(tmp_path, 100, start=300)  # new files do not move the old ones
    grown = _codes(_images(image_sources.load_image_source(config)[1].ordered()))
    assert [i for i in grown if i < 300] == test_ids


def test_flat_folder_of_class_folders_is_labelled(tmp_path):
    for i in range(40):
        _save(str(tmp_path / ("ab"[i % 2]) / f"{i:03d}.png"), _coded(i))
    train, test, names = image_sources.load_image_source(
        _config(name="folder", path=str(tmp_path), holdout_fraction=0.25))
    assert names == ("a", "b")
    for split in (train, test):
        ids = _codes(_images(split.ordered()))
        np.testing.assert_array_equal(split.labels, [i % 2 for i in ids])
    assert train.num_examples + test.num_examples == 40


def test_epoch_is_a_seeded_permutation_in_graph_mode(tmp_path):
    for split in ("train", "test"):
        for i in range(12):
            _save(str(tmp_path / split / f"{i:02d}.png"), _coded(i))
    train, _, _ = image_sources.load_image_source(_config(name="folder", path=str(tmp_path)))
    ordered = _codes(_images(train.ordered()))
    assert ordered == list(range(12))
    first, second = (_codes(e) for e in _epochs(train, 5))
    assert sorted(first) == ordered and sorted(second) == ordered
    assert first != ordered and first != second
    assert [_codes(e) for e in _epochs(train, 5)] == [first, second]
    assert _codes(_epochs(train, 6)[0]) != first
    assert _codes(_images(train.epoch(fold(5, 0)))) == first  # eager too


def test_file_list_is_not_a_graph_constant(tmp_path):
    sizes = []
    for n in (10, 100):
        root = tmp_path / str(n)
        for split in ("train", "test"):
            for i in range(n):
                _save(str(root / split / f"file{i:04d}.png"), _coded(i, (2, 2)))
        train, _, _ = image_sources.load_image_source(_config(name="folder", path=str(root)))
        graph = tf.data.Dataset.range(1).flat_map(
            lambda e, split=train: split.epoch(fold(0, e)))._as_serialized_graph().numpy()
        assert b"file0009.png" not in graph
        sizes.append(len(graph))
    assert sizes[0] < 50_000 and abs(sizes[1] - sizes[0]) < 16


@pytest.mark.parametrize("kind", ["unset", "missing", "file"])
def test_bad_path_is_named(tmp_path, kind):
    path = {"unset": None, "missing": str(tmp_path / "nope"), "file": str(tmp_path / "f")}[kind]
    (tmp_path / "f").write_text("x")
    assert "--config.dataset.path" in _error(_config(name="folder", path=path))


def test_empty_folder_names_the_extensions(tmp_path):
    (tmp_path / "readme.txt").write_text("x")
    message = _error(_config(name="folder", path=str(tmp_path)))
    assert "--config.dataset.path" in message and ".png" in message and ".jpeg" in message


def test_train_folder_needs_a_test_folder(tmp_path):
    _save(str(tmp_path / "train" / "a.png"), _coded(1))
    message = _error(_config(name="folder", path=str(tmp_path)))
    assert "--config.dataset.path" in message and "test/" in message


def test_empty_test_folder_is_named(tmp_path):
    _save(str(tmp_path / "train" / "a.png"), _coded(1))
    os.makedirs(tmp_path / "test" / "cat")
    message = _error(_config(name="folder", path=str(tmp_path)))
    assert "--config.dataset.path" in message and "test holds no image files" in message


def test_empty_holdout_names_the_fraction(tmp_path):
    _flat_folder(tmp_path, 5)
    message = _error(_config(name="folder", path=str(tmp_path), holdout_fraction=0.0))
    assert "--config.dataset.holdout_fraction" in message and "test split" in message


def test_mixed_flat_and_class_files(tmp_path):
    _save(str(tmp_path / "a.png"), _coded(1))
    _save(str(tmp_path / "cat" / "b.png"), _coded(2))
    message = _error(_config(name="folder", path=str(tmp_path)))
    assert "--config.dataset.path" in message and "a.png" in message and "cat/b.png" in message


def test_train_and_test_need_the_same_classes(tmp_path):
    _save(str(tmp_path / "train" / "cat" / "a.png"), _coded(1))
    _save(str(tmp_path / "train" / "dog" / "b.png"), _coded(2))
    _save(str(tmp_path / "test" / "cat" / "c.png"), _coded(3))
    _save(str(tmp_path / "test" / "eel" / "d.png"), _coded(4))
    message = _error(_config(name="folder", path=str(tmp_path)))
    assert "--config.dataset.path" in message and "dog" in message and "eel" in message


def _good_pair(root):
    _save(str(root / "train" / "a.png"), _coded(1))
    _save(str(root / "test" / "b.png"), _coded(2))


def test_corrupt_file_is_named_or_fails_at_decode_unchecked(tmp_path):
    _good_pair(tmp_path)
    (tmp_path / "train" / "broken.png").write_bytes(b"\x89PNG definitely not")
    message = _error(_config(name="folder", path=str(tmp_path)))
    assert "--config.dataset.path" in message and "train/broken.png" in message
    train, _, _ = image_sources.load_image_source(
        _config(name="folder", path=str(tmp_path), check_files=False))
    with pytest.raises(tf.errors.InvalidArgumentError):
        _images(train.ordered())


def test_other_format_behind_an_image_name(tmp_path):
    _good_pair(tmp_path)
    _save(str(tmp_path / "train" / "c.png"), _coded(3), format="TIFF")
    message = _error(_config(name="folder", path=str(tmp_path)))
    assert "train/c.png" in message and "TIFF" in message


def test_palette_bmp_is_refused(tmp_path):
    _good_pair(tmp_path)
    Image.fromarray(_coded(9)).convert("P").save(tmp_path / "test" / "p.bmp")
    message = _error(_config(name="folder", path=str(tmp_path)))
    assert "test/p.bmp" in message and "palette BMP" in message


def test_mixed_gray_and_rgb_names_both_files(tmp_path):
    _good_pair(tmp_path)
    _save(str(tmp_path / "train" / "g.jpg"), np.full((5, 5), 9, np.uint8))
    message = _error(_config(name="folder", path=str(tmp_path)))
    assert "--config.dataset.path" in message
    assert "train/a.png" in message and "train/g.jpg" in message
    assert "all-grayscale or all-RGB" in message


def test_unknown_source_and_missing_decode_size():
    assert "--config.dataset.name" in _error(_config(name="imagenet"))
    assert "--config.dataset.decode_size" in _error(_config(name="folder", decode_size=None))


def test_channel_stats_match_numpy(tmp_path):
    rng = np.random.default_rng(3)
    arrays = rng.integers(0, 256, (7, 8, 8, 3), dtype=np.uint8)
    for i, array in enumerate(arrays):
        _save(str(tmp_path / "train" / f"{i}.png"), array)
    _save(str(tmp_path / "test" / "t.png"), arrays[0])
    train, _, _ = image_sources.load_image_source(_config(name="folder", path=str(tmp_path)))
    mean, std = image_sources.channel_stats(train, None)
    pixels = arrays.reshape(-1, 3) / 255.0
    np.testing.assert_allclose(mean, pixels.mean(0), rtol=1e-10)
    np.testing.assert_allclose(std, pixels.std(0), rtol=1e-8)
    assert len(mean) == 3 and all(isinstance(v, float) for v in mean + std)
    five = subsets.draw(7, 5, None, subsets.STATS)
    mean, std = image_sources.channel_stats(train, 5)
    np.testing.assert_allclose(mean, (arrays[five].reshape(-1, 3) / 255.0).mean(0), rtol=1e-10)


def test_channel_stats_of_class_folders_sample_every_class(tmp_path):
    for cls, colour in (("a_red", (255, 0, 0)), ("b_blue", (0, 0, 255))):
        for i in range(6):
            _save(str(tmp_path / "train" / cls / f"{i}.png"), _solid(colour))
        _save(str(tmp_path / "test" / cls / "t.png"), _solid(colour))
    train, _, _ = image_sources.load_image_source(_config(name="folder", path=str(tmp_path)))
    mean, std = image_sources.channel_stats(train, 4)
    # Two red and two blue images (the first four files are all red: mean (1, 0, 0)).
    np.testing.assert_allclose(mean, (0.5, 0.0, 0.5), atol=1e-12)
    np.testing.assert_allclose(std, (0.5, 0.0, 0.5), atol=1e-12)


# --------------------------------------------------------------------------------------------
# TFDS (mocked stl10, with split metadata written to tmp_path so split names are known)


@pytest.fixture
def stl10(tmp_path):
    with tfds.testing.mock_data(num_examples=30):
        builder = tfds.builder("stl10")
        builder.info.set_splits(tfds.core.SplitDict([
            tfds.core.SplitInfo(name=name, shard_lengths=[30], num_bytes=0)
            for name in ("train", "test", "unlabelled")]))
        meta = tmp_path / "meta" / "stl10" / str(builder.version)
        os.makedirs(meta)
        builder.info.write_to_directory(str(meta))
    with tfds.testing.mock_data(num_examples=30, data_dir=str(tmp_path / "meta")):
        yield lambda **dataset: _config(name="tfds:stl10", **dataset)


def test_tfds_ordered_labels_and_class_names(stl10):
    train, test, names = image_sources.load_image_source(stl10(train_size=20, test_size=50))
    assert names == tuple(tfds.builder("stl10").info.features["label"].names)
    assert train.num_examples == 20 and test.num_examples == 30  # mock: 30 per split
    assert train.labels.dtype == np.int64 and train.labels.shape == (20,)
    assert ((train.labels >= 0) & (train.labels < 10)).all()
    images = _images(train.ordered())
    assert images.shape == (20, 8, 8, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(_images(train.ordered()), images)  # a fixed order


def test_tfds_epoch_is_a_seeded_permutation_whatever_the_global_seed(stl10):
    train, _, _ = image_sources.load_image_source(stl10(train_size=20, shuffle_buffer=8))
    ordered = sorted(map(bytes, _images(train.ordered())))
    first, second = _epochs(train, 1)
    assert sorted(map(bytes, first)) == ordered and sorted(map(bytes, second)) == ordered
    assert not np.array_equal(first, second)
    tf.random.set_seed(99)  # Dataset.shuffle would mix this in; epoch() must not
    np.testing.assert_array_equal(_epochs(train, 1), np.stack([first, second]))
    assert not np.array_equal(_epochs(train, 2)[0], first)


def test_tfds_unlabelled_split(stl10):
    train, _, names = image_sources.load_image_source(
        stl10(train_split="unlabelled", label_key="", train_size=25))
    assert names is None and train.labels is None and train.num_examples == 25
    assert len(_images(train.ordered())) == 25


@pytest.mark.parametrize("field", ["train_split", "test_split"])
def test_tfds_missing_split_lists_the_splits(stl10, field):
    message = _error(stl10(**{field: "validation"}))
    assert f"--config.dataset.{field}" in message and "test, train, unlabelled" in message


@pytest.mark.parametrize("field", ["image_key", "label_key"])
def test_tfds_missing_feature_lists_the_features(stl10, field):
    message = _error(stl10(**{field: "pixels"}))
    assert f"--config.dataset.{field}" in message and "image, label" in message


def test_tfds_missing_data_names_data_dir_and_tfds_build(tmp_path):
    message = _error(_config(name="tfds:stl10", data_dir=str(tmp_path / "tfds")))
    assert "--config.dataset.data_dir" in message and "tfds build stl10" in message
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("kind", ["folder", "tfds"])
def test_epoch_rows_are_the_rows_of_the_whole_batches(kind, tmp_path, request):
    if kind == "tfds":
        split, _, _ = image_sources.load_image_source(
            request.getfixturevalue("stl10")(train_size=20, shuffle_buffer=20))
    else:
        for where in ("train", "test"):
            for i in range(20):
                _save(str(tmp_path / where / f"{i:02d}.png"), _coded(i))
        split, _, _ = image_sources.load_image_source(_config(name="folder",
                                                              path=str(tmp_path)))
    seed = fold(11, 0)
    whole = [b.numpy() for b in split.epoch(seed).batch(8, drop_remainder=True)]
    share = [b.numpy() for b in split.epoch_rows(seed, 8, (2, 4))]
    assert len(share) == len(whole) == split.num_examples // 8
    for full, mine in zip(whole, share):
        np.testing.assert_array_equal(mine, full[2:6])


# --------------------------------------------------------------------------------------------
# TFDS prepared as ArrayRecord (a real dataset written to tmp_path): read by index


class CodedImages(tfds.core.GeneratorBasedBuilder):
    """Solid images whose colour encodes their example number; label = number % 3."""

    VERSION = tfds.core.Version("1.0.0")
    # TFDS derives this from the module's resources, which needs the importlib_resources
    # backport for a module outside an installed package; the file itself will do.
    code_path = epath.Path(__file__)

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, 3)),
            "label": tfds.features.ClassLabel(names=["a", "b", "c"])}))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(0, 40), "test": self._generate_examples(40, 12)}

    def _generate_examples(self, first, count):
        for i in range(first, first + count):
            yield i, {"image": _coded(i, (9, 6)), "label": i % 3}


def _prepared(tmp_path, file_format):
    data_dir = str(tmp_path / "tfds")
    CodedImages(data_dir=data_dir, file_format=file_format).download_and_prepare()
    return lambda **dataset: _config(name="tfds:coded_images", data_dir=data_dir,
                                     **dataset)


@pytest.fixture
def array_record(tmp_path):
    return _prepared(tmp_path, "array_record")


class _CountingSource:
    """Wraps a data source and records every index read."""

    def __init__(self, source):
        self.source, self.read = source, []

    def __len__(self):
        return len(self.source)

    def __getitem__(self, index):
        self.read.append(int(index))
        return self.source[index]


@pytest.mark.parametrize("file_format", ["array_record", "tfrecord"])
def test_prepared_tfds_split_with_its_labels(file_format, tmp_path):
    """Real files in both formats: ArrayRecord is read by index, TFRecord streamed."""
    train, test, names = image_sources.load_image_source(
        _prepared(tmp_path, file_format)(test_size=10, shuffle_buffer=40))
    indexed = isinstance(train, image_splits.IndexedSplit)
    assert indexed == (file_format == "array_record")
    assert names == ("a", "b", "c")
    assert train.num_examples == 40 and test.num_examples == 10
    for split, first in ((train, 0), (test, 40)):
        codes = _codes(_images(split.ordered()))
        # The stored order is TFDS's (shuffled at writing); labels follow it.
        np.testing.assert_array_equal(split.labels, np.array(codes) % 3)
        assert len(set(codes)) == len(codes) and min(codes) >= first
    assert sorted(_codes(_images(train.ordered()))) == list(range(40))
    first, second = _epochs(train, 3)
    assert sorted(_codes(first)) == sorted(_codes(second)) == list(range(40))
    assert _codes(first) != _codes(second)
    np.testing.assert_array_equal(_epochs(train, 3), np.stack([first, second]))


@pytest.mark.parametrize("file_format", ["array_record", "tfrecord"])
def test_tfds_size_limits_draw_per_class_and_epochs_read_only_them(file_format, tmp_path):
    train, test, _ = image_sources.load_image_source(
        _prepared(tmp_path, file_format)(train_size=9, test_size=6, shuffle_buffer=40))
    # 9 of 40 (labels i % 3: 14, 13, 13): one each, then 6 by largest remainders: 3, 3, 3.
    assert np.bincount(train.labels).tolist() == [3, 3, 3]
    assert np.bincount(test.labels).tolist() == [2, 2, 2]
    for split in (train, test):
        codes = _codes(_images(split.ordered()))
        np.testing.assert_array_equal(split.labels, np.array(codes) % 3)
    kept = sorted(_codes(_images(train.ordered())))
    for epoch in _epochs(train, 5):
        assert sorted(_codes(epoch)) == kept  # an epoch is a permutation of the kept ones


def test_array_record_share_reads_only_its_records(array_record):
    split, _, _ = image_sources.load_image_source(array_record())
    seed = fold(11, 0)
    whole = [b.numpy() for b in split.epoch(seed).batch(16, drop_remainder=True)]
    split._source = _CountingSource(split._source)
    share = [b.numpy() for b in split.epoch_rows(seed, 16, (4, 8))]
    assert len(share) == len(whole) == 2
    for full, mine in zip(whole, share):
        np.testing.assert_array_equal(mine, full[4:12])
    # The records read are exactly those of the share's rows, each once.
    order = split._order(seed).numpy()[:32].reshape(2, 16)
    assert sorted(split._source.read) == sorted(order[:, 4:12].ravel().tolist())


def test_array_record_unlabelled_and_missing_files(array_record, tmp_path):
    train, _, names = image_sources.load_image_source(array_record(label_key=""))
    assert names is None and train.labels is None and train.num_examples == 40
    for root, _, files in os.walk(tmp_path / "tfds"):
        for name in files:
            if "array_record" in name:
                os.remove(os.path.join(root, name))
    message = _error(array_record())
    assert "--config.dataset.data_dir" in message and "tfds build" in message
