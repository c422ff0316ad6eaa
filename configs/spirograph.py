"""InvCLR on Spirograph with the authors' settings (SPEC §4, §5): ResNet-18, batch 512, 50 epochs.

    python -m invcl_tf.train --config=configs/spirograph.py --workdir=runs/spirograph
    python -m invcl_tf.train --config=configs/spirograph.py --workdir=runs/simclr \
        --config.gp.weight=0      # the no-penalty baseline

``--config=configs/spirograph.py:collapse`` is λ = 0.1, which the authors found collapses the
representation (test MSE ≈ 0.22).
"""

import ml_collections


def get_config(arg=None):
    """Returns the paper's Spirograph config; ``arg`` picks a variant (``collapse``)."""
    config = ml_collections.ConfigDict()
    config.seed = 0

    config.dataset = ml_collections.ConfigDict()
    config.dataset.name = "spirograph"
    config.dataset.train_size = 100_000
    config.dataset.test_size = 20_000

    config.model = ml_collections.ConfigDict()
    config.model.arch = "resnet18"
    config.model.width_multiplier = 1.0

    config.train = ml_collections.ConfigDict()
    config.train.batch_size = 512
    config.train.epochs = 50
    config.train.base_lr = 1.5  # peak lr = base_lr * batch_size / 256
    config.train.warmup_epochs = 10
    config.train.momentum = 0.9
    config.train.weight_decay = 1e-6
    config.train.trust_coefficient = 1e-3
    config.train.temperature = 0.5
    config.train.jit_compile = False

    config.gp = ml_collections.ConfigDict()
    config.gp.weight = 0.01
    config.gp.clip = 1000.0
    config.gp.num_extra = 100
    config.gp.normalize = True

    config.eval = ml_collections.ConfigDict()
    config.eval.num_passes = (1, 2, 3, 4, 5, 10, 20, 30)
    config.eval.probe_l2 = 1e-8
    config.eval.probe_fraction = 0.5  # the authors' --proportion 0.5
    config.eval.nuisance_l2 = 1e-5
    config.eval.variance_copies = 10
    config.eval.batch_size = 500
    config.eval.every_epochs = 10
    config.eval.monitor_size = 5000  # inputs per split for the quick in-training probe

    if arg == "collapse":
        config.gp.weight = 0.1
    elif arg:
        raise ValueError(f"unknown variant {arg!r} of configs/spirograph.py; known: collapse")
    return config
