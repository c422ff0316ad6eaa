"""The Spirograph method of configs/spirograph.py scaled to finish in minutes on 2 CPU cores.

    python -m invcl_tf.train --config=configs/spirograph_cpu.py --workdir=runs/demo
    python -m invcl_tf.train --config=configs/spirograph_cpu.py:tiny --workdir=/tmp/smoke

Same objective, penalty (λ = 0.01, U = 1000, 100 extra draws), optimiser and protocol; smaller
data, a quarter-width ResNet-18, fewer epochs and fewer feature-averaging passes.
"""

from invcl_tf import configuration

spirograph = configuration.import_config_file("spirograph.py", relative_to=__file__)


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
        configuration.shrink_for_tests(config, train_size=256, test_size=128, batch_size=32,
                                       epochs=2, num_extra=8)
    return config
