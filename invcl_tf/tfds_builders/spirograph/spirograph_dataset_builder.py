"""TFDS builder for Spirograph (SPEC §3): rendered images with their targets and nuisance.

Built fully offline: the targets are the run's fixed target vectors of
``invcl_tf.data.sources.spirograph_targets`` and the images are drawn with
``invcl_tf.transforms.spirograph.render``. Build with
``tfds build invcl_tf/tfds_builders/spirograph --config=small --data_dir=DIR`` (the ``tfds`` CLI
itself needs apache-beam installed), or load with ``tfds.load("spirograph", data_dir=DIR)``
after ``import invcl_tf.tfds_builders.spirograph``.
"""

import dataclasses

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from invcl_tf.data import draws, sources
from invcl_tf.transforms import spirograph

# Split name -> index folded into the nuisance seed; the order follows ``spirograph_targets``.
_SPLITS = {"train": 0, "test": 1}
# Folded below the split so the stored nuisance never shares a seed with the targets' draws.
_NUISANCE_SALT = 1
_RENDER_BATCH = 1000

_DESCRIPTION = """\
Spirograph, the synthetic dataset of InvCLR (Foster, Pukdee, Rainforth, ICLR 2021).

Each image is a spirograph curve drawn from four target parameters (m, b, sigma, rfore) and
six nuisance parameters (h, rback, gfore, gback, bfore, bback). `targets` are exactly the
run's fixed target vectors for the config's seed and sizes
(`invcl_tf.data.sources.spirograph_targets`), in order: example i of a split holds its
i-th target vector. `nuisance` is one fixed draw per example, uniform in the paper's ranges,
from a stateless seed derived from the config's seed and the split.

This is a static benchmark rendering: InvCLR training reads only the targets and draws fresh
nuisance for every view. `image` is the float rendering (row-normalised, as in the authors'
code) quantised to uint8 as round(255 * clip(x, 0, 1)).
"""

_CITATION = """\
@inproceedings{foster2021improving,
  title={Improving Transformation Invariance in Contrastive Representation Learning},
  author={Foster, Adam and Pukdee, Rattana and Rainforth, Tom},
  booktitle={International Conference on Learning Representations},
  year={2021},
  url={https://openreview.net/forum?id=NomEDgIEBwE}
}
"""


@dataclasses.dataclass(eq=False)
class SpirographConfig(tfds.core.BuilderConfig):
    """Split sizes and the seed that fixes every target and nuisance vector."""

    train_size: int = 100_000
    test_size: int = 20_000
    seed: int = 0

    def __post_init__(self):
        if self.train_size < 1 or self.test_size < 1:
            raise ValueError(f"SpirographConfig {self.name!r}: split sizes must be positive, "
                             f"got train_size={self.train_size}, test_size={self.test_size}")


def _quantize(images):
    """Float images in [0, 1] (clipped) to uint8 levels round(255 * x)."""
    return np.round(255.0 * np.clip(images, 0.0, 1.0)).astype(np.uint8)


def _nuisance_seed(seed, split):
    """The stateless seed [2] of the stored nuisance of ``split`` ("train" or "test")."""
    return draws.fold(seed, draws.STREAM_DATA, _SPLITS[split], _NUISANCE_SALT)


class Builder(tfds.core.GeneratorBasedBuilder):
    """Spirograph images rendered from the run's targets and one fixed nuisance draw each."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: targets, nuisance and uint8 renderings."}
    BUILDER_CONFIGS = [
        SpirographConfig(name="default", description="100,000 train / 20,000 test, seed 0."),
        SpirographConfig(name="small", train_size=1_000, test_size=200,
                         description="1,000 train / 200 test, seed 0 (smoke tests)."),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "default"

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls):
        """This file's path, which TFDS's own lookup would find for a packaged builder."""
        # TFDS 4.9's lookup needs `importlib_resources`, which TFDS does not declare
        # (tensorflow/datasets#11212); without it every build fails, so answer directly.
        return epath.Path(__file__)

    def _info(self):
        size = spirograph.IMAGE_SIZE
        return tfds.core.DatasetInfo(
            builder=self,
            description=_DESCRIPTION,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(size, size, 3), dtype=np.uint8,
                                             encoding_format="png"),
                "targets": tfds.features.Tensor(
                    shape=(len(spirograph.TARGET_NAMES),), dtype=np.float32,
                    doc=", ".join(spirograph.TARGET_NAMES)),
                "nuisance": tfds.features.Tensor(
                    shape=(len(spirograph.NUISANCE_NAMES),), dtype=np.float32,
                    doc=", ".join(spirograph.NUISANCE_NAMES)),
            }),
            supervised_keys=("image", "targets"),
            homepage="https://openreview.net/forum?id=NomEDgIEBwE",
            citation=_CITATION,
            # Stored in key order so example i lines up with target row i of training.
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # Everything is rendered locally; nothing is downloaded.
        config = self.builder_config
        targets = dict(zip(_SPLITS, sources.spirograph_targets(
            config.seed, config.train_size, config.test_size)))
        return {split: self._generate_examples(targets[split], _nuisance_seed(config.seed, split))
                for split in _SPLITS}

    def _generate_examples(self, targets, seed):
        """Yields ``(index, example)`` for each row of ``targets``, nuisance drawn from ``seed``."""
        nuisance = spirograph.sample_nuisance(seed, [len(targets)]).numpy()
        for start in range(0, len(targets), _RENDER_BATCH):
            stop = start + _RENDER_BATCH
            images = _quantize(spirograph.render(targets[start:stop], nuisance[start:stop]).numpy())
            for index, image in enumerate(images, start):
                yield index, {"image": image, "targets": targets[index],
                              "nuisance": nuisance[index]}
