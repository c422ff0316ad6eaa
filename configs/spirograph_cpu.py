"""The Spirograph method of configs/spirograph.py scaled to finish in minutes on 2 CPU cores.

    python -m invcl_tf.train --config=configs/spirograph_cpu.py --workdir=runs/demo
    python -m invcl_tf.train --config=configs/spirograph_cpu.py:tiny --workdir=/tmp/smoke

Same objective, penalty (λ = 0.01, U = 1000, 100 extra draws), optimiser and protocol; smaller
data, a quarter-width ResNet-18, fewer epochs and fewer feature-averaging passes.
"""

from configs import spirograph


def get_config(arg=None):
    """Returns the CPU demo config; ``tiny`` is a seconds-long smoke test (tests use it), any
    other ``arg`` is passed on to configs/spirograph.py."""
    config = spirograph.get_config(None if arg == "tiny" else arg)
    config.dataset.train_size = 8_192
    config.dataset.test_size = 4_000
    config.model.width_multiplier = 0.25
    config.train.batch_size = 128
    config.train.epochs = 6
    config.train.warmup_epochs = 1
    config.eval.num_passes = (1, 3, 10)
    config.eval.every_epochs = 3
    config.eval.monitor_size = 1000
    if arg == "tiny":
        config.dataset.train_size = 256
        config.dataset.test_size = 128
        config.model.arch = "resnet_tiny"
        config.model.width_multiplier = 1.0
        config.train.batch_size = 32
        config.train.epochs = 2
        config.train.warmup_epochs = 1
        config.gp.num_extra = 8
        config.eval.num_passes = (1, 2)
        config.eval.variance_copies = 2
        config.eval.batch_size = 128
        config.eval.every_epochs = 1
        config.eval.monitor_size = 64
    return config
