"""The ``spirograph`` TFDS builder: registration, splits and the stored examples' contents."""

import tempfile

import numpy as np
import pytest
import tensorflow_datasets as tfds

from invcl_tf.data import sources
from invcl_tf.transforms import spirograph
from invcl_tf.tfds_builders.spirograph import Builder, SpirographConfig

TRAIN, TEST = 6, 3


class SpirographBuilderTest(tfds.testing.DatasetBuilderTestCase):
    """TFDS's own checks (registration, info, splits, reload) on a tiny config."""

    DATASET_CLASS = Builder
    BUILDER_CONFIG_NAMES_TO_TEST = [SpirographConfig(name="dummy", train_size=8, test_size=4)]
    SPLITS = {"train": 8, "test": 4}
    # Nothing is downloaded, so there are no URLs to checksum.
    SKIP_CHECKSUMS = True

    @classmethod
    def setUpClass(cls):
        # The harness insists on an existing dummy-data directory even though nothing reads it.
        cls._dummy_dir = tempfile.TemporaryDirectory()
        cls.EXAMPLE_DIR = cls._dummy_dir.name
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls._dummy_dir.cleanup()


def _build(root, seed):
    builder = tfds.builder("spirograph", data_dir=root, config=SpirographConfig(
        name=f"tiny_seed{seed}", train_size=TRAIN, test_size=TEST, seed=seed))
    builder.download_and_prepare()
    return {split: tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
            for split in ("train", "test")}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Seed 0 built twice into separate directories, and seed 1 once."""
    return {"seed0": _build(tmp_path_factory.mktemp("a"), 0),
            "seed0_again": _build(tmp_path_factory.mktemp("b"), 0),
            "seed1": _build(tmp_path_factory.mktemp("c"), 1)}


def test_registered_configs():
    configs = {c.name: c for c in Builder.BUILDER_CONFIGS}
    assert Builder.name == "spirograph" and "spirograph" in tfds.list_builders()
    assert Builder.DEFAULT_BUILDER_CONFIG_NAME == "default"
    assert (configs["default"].train_size, configs["default"].test_size) == (100_000, 20_000)
    assert (configs["small"].train_size, configs["small"].test_size) == (1_000, 200)
    assert configs["default"].seed == configs["small"].seed == 0
    with pytest.raises(ValueError, match="positive"):
        SpirographConfig(name="empty", train_size=0)


@pytest.mark.parametrize("key, seed", [("seed0", 0), ("seed1", 1)])
def test_targets_are_the_runs_targets_in_order(built, key, seed):
    train, test = sources.spirograph_targets(seed, TRAIN, TEST)
    np.testing.assert_array_equal(built[key]["train"]["targets"], train)
    np.testing.assert_array_equal(built[key]["test"]["targets"], test)


@pytest.mark.parametrize("split", ["train", "test"])
def test_images_are_the_quantised_rendering_of_the_stored_parameters(built, split):
    data = built["seed0"][split]
    images = data["image"]
    assert images.dtype == np.uint8 and images.shape[1:] == (32, 32, 3)
    expected = np.round(255.0 * np.clip(
        spirograph.render(data["targets"], data["nuisance"]).numpy(), 0.0, 1.0))
    np.testing.assert_allclose(images.astype(np.float64), expected, atol=1.0)


@pytest.mark.parametrize("split", ["train", "test"])
def test_nuisance_lies_in_its_ranges(built, split):
    nuisance = built["seed0"][split]["nuisance"]
    assert nuisance.dtype == np.float32 and nuisance.shape == (len(nuisance), 6)
    lo, hi = np.array(spirograph.NUISANCE_RANGES, np.float32).T
    assert np.all(nuisance >= lo) and np.all(nuisance <= hi)


def test_same_seed_same_dataset_other_seed_differs(built):
    for split in ("train", "test"):
        for feature in ("image", "targets", "nuisance"):
            np.testing.assert_array_equal(built["seed0"][split][feature],
                                          built["seed0_again"][split][feature])
            assert not np.array_equal(built["seed0"][split][feature],
                                      built["seed1"][split][feature])
    assert not np.array_equal(built["seed0"]["train"]["nuisance"][:TEST],
                              built["seed0"]["test"]["nuisance"])
