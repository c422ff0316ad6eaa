"""The paper's studies for GPUs: Spirograph (SPEC §4–§5; 3 seeds, λ ∈ {0, 0.01, 0.1}) or, with
``:cifar10`` / ``:cifar100``, CIFAR (3 seeds, λ ∈ {0, 0.1}).

    python -m invcl_tf.report --config=configs/report_paper.py --output=runs/study_spirograph
    python -m invcl_tf.report --config=configs/report_paper.py:cifar10 \\
        --config.dataset.data_dir=/data/tfds --output=runs/study_cifar10

Cost on one GPU (an ESTIMATE from FLOP counts, not a measurement): a CIFAR-stem ResNet-18
forward pass at 32 px is about 1.1 GFLOPs per image and forward + backward about 3x that; a step
sees two views, and double backpropagation through view 1 costs about 1.5x the plain step, so
about 10 GFLOPs per example with the penalty and 6.7 without. Spirograph: 100,000 targets x 50
epochs = 5e6 examples, i.e. 5e16 FLOPs per penalised run; at a sustained 25 TFLOP/s (mixed
precision on an A100-class GPU at small 32 px images) that is about 33 minutes (22 without the
penalty), so the 9 runs take about 4.5 hours with their evaluations. CIFAR-10/100 with the
paper's ResNet-50 (about 2.6 GFLOPs forward at 32 px, 23 GFLOPs per example with the penalty),
50,000 images x 1,000 epochs: about 1.2e18 FLOPs, 6.5 hours per penalised run at 50 TFLOP/s,
about 32 hours for the 6 runs. The data must already be prepared (``tfds build cifar10``): the
study stops before its first run, with the same line as ``invcl-train``, when it is missing.
"""

from invcl_tf import configuration

spirograph = configuration.import_config_file("spirograph.py", relative_to=__file__)
cifar10 = configuration.import_config_file("cifar10.py", relative_to=__file__)


def get_config(arg=None):
    """Returns the paper's study: Spirograph by default, ``cifar10`` or ``cifar100``."""
    if arg in (None, ""):
        config = spirograph.get_config()
        config.report.weights = (0.0, 0.01, 0.1)
    elif arg in ("cifar10", "cifar100"):
        config = cifar10.cifar_config(arg)
        config.report.weights = (0.0, 0.1)
    else:
        raise ValueError(f"unknown variant {arg!r} of configs/report_paper.py; known: cifar10, "
                         "cifar100")
    config.report.seeds = (0, 1, 2)
    return config
