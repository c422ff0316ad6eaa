"""InvCLR on CIFAR-10 with the authors' settings (SPEC §2, §4): ResNet-50, batch 512, 1000 epochs.

The data must already be prepared in a TFDS data_dir (`tfds build cifar10 --data_dir=DIR` on a
machine with internet):

    python -m invcl_tf.train --config=configs/cifar10.py --workdir=runs/cifar10 \
        --config.dataset.data_dir=DIR
"""

from invcl_tf import configuration


def get_config(arg=None):
    """Returns the paper's CIFAR-10 config; ``tiny`` is a seconds-long smoke test."""
    return cifar_config("cifar10", arg)


def cifar_config(name, arg=None):
    """The CIFAR protocol for ``name`` in {cifar10, cifar100}; ``arg`` picks a variant."""
    if arg not in (None, "", "tiny"):
        raise ValueError(f"unknown variant {arg!r} of the {name} config; known: tiny")
    config = configuration.base_config()
    config.dataset.name = name
    config.dataset.train_size = 50_000
    config.dataset.test_size = 10_000
    config.dataset.color_strength = 0.5
    config.model.arch = "resnet50"
    config.train.epochs = 1000
    config.gp.weight = 0.1
    config.gp.clip = 1.0
    config.eval.num_passes = (1, 10, 100)
    config.eval.probe_l2 = 1e-5
    config.eval.test_fraction = 1.0
    config.eval.every_epochs = 50
    config.eval.robustness_values = (0.0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0)
    if arg == "tiny":
        configuration.shrink_for_tests(config, train_size=64, test_size=32, batch_size=16,
                                       epochs=1, num_extra=4)
        config.eval.robustness_values = (0.0, 1.0)
    return config
