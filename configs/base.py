"""Fields every run has; the dataset configs start from here and set the authors' values."""

import ml_collections


def base_config():
    """The shared schema with SPEC §4/§5 defaults (batch 512, LARS, warm-up + cosine)."""
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.distribute = "auto"  # auto | none | mirrored; train.batch_size is the global batch

    config.dataset = ml_collections.ConfigDict()
    config.dataset.name = "spirograph"
    config.dataset.train_size = 100_000
    config.dataset.test_size = 20_000

    config.model = ml_collections.ConfigDict()
    config.model.arch = "resnet18"
    config.model.width_multiplier = 1.0
    # Synchronised batch norm makes N replicas compute what one device would on the global
    # batch; the authors' DataParallel kept statistics per device.
    config.model.sync_bn = True

    config.train = ml_collections.ConfigDict()
    config.train.batch_size = 512
    config.train.epochs = 50
    config.train.base_lr = 1.5  # peak lr = base_lr * batch_size / 256
    config.train.warmup_epochs = 10
    config.train.momentum = 0.9
    config.train.weight_decay = 1e-6
    config.train.trust_coefficient = 1e-3
    config.train.temperature = 0.5
    config.train.jit_compile = False  # XLA measured 2x slower on CPU; try it on GPUs
    config.train.precision = "float32"  # or mixed_float16 / mixed_bfloat16

    config.gp = ml_collections.ConfigDict()
    config.gp.weight = 0.01
    config.gp.clip = 1000.0
    config.gp.num_extra = 100
    config.gp.normalize = True

    config.eval = ml_collections.ConfigDict()
    config.eval.num_passes = (1, 2, 3, 4, 5, 10, 20, 30)
    config.eval.probe_l2 = 1e-8
    config.eval.probe_fraction = 0.5  # of the training split fits the probe (--proportion 0.5)
    config.eval.test_fraction = 0.5   # of the test split scores it
    config.eval.nuisance_l2 = 1e-5
    config.eval.variance_copies = 10
    config.eval.batch_size = 500
    config.eval.every_epochs = 10
    config.eval.monitor_size = 5000  # inputs per split for the quick in-training probe
    config.eval.robustness_values = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
    return config


def shrink_for_tests(config, train_size, test_size, batch_size, epochs, num_extra):
    """Turns ``config`` into a seconds-long smoke run on a tiny ResNet (tests use these)."""
    config.dataset.train_size = train_size
    config.dataset.test_size = test_size
    config.model.arch = "resnet_tiny"
    config.model.width_multiplier = 1.0
    config.train.batch_size = batch_size
    config.train.epochs = epochs
    config.train.warmup_epochs = 1
    config.gp.num_extra = num_extra
    config.eval.num_passes = (1, 2)
    config.eval.variance_copies = 2
    config.eval.batch_size = test_size
    config.eval.every_epochs = 1
    config.eval.monitor_size = batch_size * 2
    return config
