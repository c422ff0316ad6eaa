"""Spirograph with geometric nuisance: the curve is also rotated and shifted, and the penalty
differentiates through both (they are renderer parameters like h and the colours).

    python -m invcl_tf.train --config=configs/spirograph_geo.py --workdir=runs/geo
    python -m invcl_tf.report --config=configs/spirograph_geo.py --output=docs/results/spirograph_geo
    python -m invcl_tf.train --config=configs/spirograph_geo.py:tiny --workdir=/tmp/smoke

The budget of the CPU demo and study (configs/report_cpu.py: ResNet-18 at 1/4 width, 8,192
training targets, batch 128, 8 epochs, the paper's penalty and protocol); the nuisance adds
a rotation of the curve about the grid's centre, U(−180°, 180°), and a shift of each
coordinate, U(−0.08, 0.08) of the side (about one grid unit). The targets m, b, σ and rfore
do not change under either, so an invariant representation loses nothing by ignoring them.
The study compares λ = 0 with the demo's λ = 0.01 over three seeds.
"""

from invcl_tf import configuration

report_cpu = configuration.import_config_file("report_cpu.py", relative_to=__file__)


def get_config(arg=None):
    """Returns the geometric-nuisance config; ``tiny`` is the tests' seconds-long version."""
    config = report_cpu.get_config(arg)
    config.dataset.rotation = 180.0
    config.dataset.shift = 0.08
    config.report.weights = (0.0, 0.01)
    return config
