"""InvCLR on your own images: a folder of image files, or any image dataset already prepared in
a TFDS data_dir. The method is the paper's CIFAR recipe (SPEC §2): random resized crop and flip
in the input pipeline, the colour jitter penalised (λ = 0.1, U = 1), a linear probe on the
classes when there are any.

    python -m invcl_tf.train --config=configs/images.py --config.dataset.name=folder \\
        --config.dataset.path=DIR --workdir=runs/mine
    python -m invcl_tf.train --config=configs/images.py --config.dataset.name=tfds:stl10 \\
        --config.dataset.data_dir=/data/tfds --config.dataset.image_size=96 \\
        --config.dataset.test_split=test --workdir=runs/stl10
    python -m invcl_tf.train --config=configs/images.py:tiny --config.dataset.path=DIR \\
        --workdir=/tmp/smoke      # seconds: a smoke test of the whole path

A folder holds class subfolders (DIR/<class>/*.png|jpg|...; labels for the probe), or images
directly (no labels: the evaluation reports the label-free metrics), optionally split into
DIR/train and DIR/test; without them a stable 10% (dataset.holdout_fraction) is the test split.
"""

from invcl_tf import configuration


def get_config(arg=None):
    """Returns the own-images config; ``tiny`` is a seconds-long smoke test."""
    if arg not in (None, "", "tiny"):
        raise ValueError(f"unknown variant {arg!r} of configs/images.py; known: tiny")
    config = configuration.base_config()
    config.dataset.name = "folder"
    # Upper limits on the examples read per split; a source may hold fewer.
    config.dataset.train_size = 10_000_000
    config.dataset.test_size = 1_000_000
    config.dataset.image_size = 32  # model.stem=auto takes the ImageNet stem above 64 px
    config.model.arch = "resnet18"
    config.model.width_multiplier = 0.25
    config.train.batch_size = 256
    config.train.epochs = 100
    config.train.checkpoint_every_steps = 1000
    config.gp.weight = 0.1
    config.gp.clip = 1.0
    config.eval.num_passes = (1, 10)
    config.eval.probe_l2 = 1e-5
    config.eval.test_fraction = 1.0
    config.eval.every_epochs = 10
    config.eval.monitor_size = 2000
    config.eval.robustness_values = (0.0, 0.25, 0.5, 0.75, 1.0)
    if arg == "tiny":
        configuration.shrink_for_tests(config, train_size=64, test_size=32, batch_size=16,
                                       epochs=2, num_extra=4)
        config.train.checkpoint_every_steps = 3
        config.dataset.stats_sample = 32
        config.eval.robustness_values = (0.0, 1.0)
    return config
