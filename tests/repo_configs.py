"""The repository's config files, imported by path as ``--config`` does (no ``configs`` package)."""

import os

from invcl_tf import configuration

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def config_path(name):
    """``configs/NAME.py`` of this checkout."""
    return os.path.join(REPO, "configs", f"{name}.py")


spirograph_cpu = configuration.import_config_file(config_path("spirograph_cpu"))
cifar10 = configuration.import_config_file(config_path("cifar10"))
cifar100 = configuration.import_config_file(config_path("cifar100"))
images = configuration.import_config_file(config_path("images"))
