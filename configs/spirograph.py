"""InvCLR on Spirograph with the authors' settings (SPEC §4, §5): ResNet-18, batch 512, 50 epochs.

    python -m invcl_tf.train --config=configs/spirograph.py --workdir=runs/spirograph
    python -m invcl_tf.train --config=configs/spirograph.py --workdir=runs/simclr \
        --config.gp.weight=0      # the no-penalty baseline

``--config=configs/spirograph.py:collapse`` is λ = 0.1, which the authors found collapses the
representation (test MSE ≈ 0.22).
"""

from invcl_tf import configuration


def get_config(arg=None):
    """Returns the paper's Spirograph config; ``arg`` picks a variant (``collapse``)."""
    config = configuration.base_config()  # its defaults are the Spirograph protocol
    if arg == "collapse":
        config.gp.weight = 0.1
    elif arg:
        raise ValueError(f"unknown variant {arg!r} of configs/spirograph.py; known: collapse")
    return config
