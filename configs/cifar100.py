"""InvCLR on CIFAR-100 with the authors' settings: configs/cifar10.py with CIFAR-100 data.

    python -m invcl_tf.train --config=configs/cifar100.py --workdir=runs/cifar100 \
        --config.dataset.data_dir=DIR
"""

from invcl_tf import configuration

cifar10 = configuration.import_config_file("cifar10.py", relative_to=__file__)


def get_config(arg=None):
    """Returns the paper's CIFAR-100 config; ``tiny`` is a seconds-long smoke test."""
    return cifar10.cifar_config("cifar100", arg)
