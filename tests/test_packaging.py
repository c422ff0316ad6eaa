"""What an install provides: every imported package declared, no generic top-level packages."""

import ast
import importlib.metadata
import os
import re
import subprocess
import sys

from tests.repo_configs import REPO

_SOURCE_DIRS = ("invcl_tf", "tuning")


def _declared(extra=None):
    """Normalised distribution names ``setup.py`` asks for (and those its extras pull in)."""
    names = set()
    for requirement in importlib.metadata.requires("invcl-tf") or ():
        marker = re.search(r'extra == "([^"]+)"', requirement)
        if (marker.group(1) if marker else None) in (None, extra):
            name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0)
            names.add(name.lower().replace("_", "-"))
            extras = re.match(r"[A-Za-z0-9_.-]+\[([^\]]+)\]", requirement)
            for sub in (extras.group(1).split(",") if extras else ()):
                for req in importlib.metadata.requires(name) or ():
                    if f'extra == "{sub.strip()}"' in req:
                        names.add(re.match(r"[A-Za-z0-9_.-]+", req).group(0).lower())
    return names


_JAX_DIR = os.path.join("invcl_tf", "jax_plumbing")  # imported only with KERAS_BACKEND=jax


def _imported_top_level(dirs, skip=()):
    found = set()
    for d in dirs:
        for root, _, files in os.walk(os.path.join(REPO, d)):
            if os.path.relpath(root, REPO) in skip:
                continue
            for name in files:
                if name.endswith(".py"):
                    tree = ast.parse(open(os.path.join(root, name)).read())
                    for node in ast.walk(tree):
                        if isinstance(node, ast.Import):
                            found |= {a.name.split(".")[0] for a in node.names}
                        elif isinstance(node, ast.ImportFrom) and node.level == 0:
                            found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"invcl_tf", "tuning"}


def test_every_package_the_library_imports_is_declared_in_setup_py():
    providers = importlib.metadata.packages_distributions()
    declared = _declared()
    for module in sorted(_imported_top_level(_SOURCE_DIRS, skip=(_JAX_DIR,))):
        dists = {d.lower().replace("_", "-") for d in providers.get(module, [])}
        assert dists & declared, f"{module} (from {dists or 'nowhere'}) is not in install_requires"
    # The JAX backend's plumbing may import what the [jax] extra installs, and nothing else.
    with_jax = _declared("jax")
    for module in sorted(_imported_top_level([_JAX_DIR])):
        dists = {d.lower().replace("_", "-") for d in providers.get(module, [])}
        assert dists & with_jax, f"{module} (from {dists or 'nowhere'}) is not in the [jax] extra"


def test_scikit_learn_for_the_bayesian_tuner_is_declared():
    # keras-tuner imports it only when BayesianOptimization is built, so no import shows it.
    assert "scikit-learn" in _declared()


def test_the_install_adds_no_generic_top_level_packages_and_the_default_config_exists(tmp_path):
    script = ("import importlib.util as u, sys, invcl_tf.cli as cli, os; "
              "print(u.find_spec('configs'), u.find_spec('benchmarks'), "
              "os.path.exists(cli.DEFAULT_CONFIG), 'configs' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=str(tmp_path), env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["None", "None", "True", "False"]


def test_the_default_config_is_the_cpu_demo_and_valid():
    from invcl_tf import cli, configuration

    config = configuration.import_config_file(cli.DEFAULT_CONFIG).get_config()
    configuration.validate(config)
    assert config.model.width_multiplier == 0.25 and config.dataset.name == "spirograph"
