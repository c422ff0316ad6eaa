"""README.md as a user pastes it: every Python block runs, in order, beside a tiny trained run
at runs/demo; every flag of the shell blocks is one the CLIs define (slow)."""

import json
import os
import re
import shlex
import subprocess
import sys
import textwrap

import pytest

from invcl_tf import configuration
from tests.repo_configs import REPO

pytestmark = pytest.mark.slow

_BLOCK = re.compile(r"^( *)```(\w*)\n(.*?)^\1```", re.M | re.S)
_CLIS = {"invcl_tf.train": "invcl-train", "invcl_tf.evaluate": "invcl-evaluate",
         "invcl_tf.export": "invcl-export", "invcl_tf.report": "invcl-report",
         "tuning.search": "invcl-tune"}


def _blocks(kind):
    text = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    return [textwrap.dedent(body) for _, lang, body in _BLOCK.findall(text) if lang == kind]


def _run(args, cwd, timeout=900):
    return subprocess.run(args, capture_output=True, text=True, cwd=cwd, timeout=timeout,
                          env=dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2"))


def test_every_python_block_runs_as_pasted(tmp_path):
    os.symlink(os.path.join(REPO, "configs"), tmp_path / "configs")
    # The blocks read runs/demo as the demo command leaves it; a tiny run stands in for it.
    proc = _run([sys.executable, "-m", "invcl_tf.train",
                 f"--config={REPO}/configs/spirograph_cpu.py:tiny", "--workdir=runs/demo",
                 "--config.eval.every_epochs=0"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    blocks = _blocks("python")
    # A block that picks Keras's backend must start its own Python, as a user would.
    own = [b for b in blocks if 'os.environ["KERAS_BACKEND"]' in b]
    blocks = [b for b in blocks if b not in own]
    assert len(blocks) >= 6 and own
    for block in own:
        proc = _run([sys.executable, "-c", block], tmp_path)
        assert proc.returncode == 0, (proc.stdout[-1500:], proc.stderr[-3000:])
    script = "\n".join(f"print('--- README block {i}', flush=True)\n{block}"
                       for i, block in enumerate(blocks, 1))
    proc = _run([sys.executable, "-c", script], tmp_path)
    assert proc.returncode == 0, (proc.stdout[-1500:], proc.stderr[-3000:])
    assert f"--- README block {len(blocks)}" in proc.stdout
    assert "[10 10 10 10] [10 10 10 10]" in proc.stdout  # the own-images example's counts


def _commands():
    """``(module, [flag names], words)`` of each ``python -m`` or console-script command of
    the shell blocks and of the prose's inline code."""
    text = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    inline = re.findall(r"`((?:python -m|invcl-)[^`\n]+)`", text)
    found = []
    for block in _blocks("bash") + inline:
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line.split(" #")[0], posix=True) if line.strip() else []
            for i, word in enumerate(words):
                module = (words[i + 1] if word == "-m" and i + 1 < len(words) else
                          next((m for m, script in _CLIS.items() if word == script), None))
                if module in _CLIS:
                    flags = [w.split("=")[0] for w in words[i + 1:] if w.startswith("--")]
                    found.append((module, flags, words))
    return found


def test_every_flag_in_the_shell_blocks_is_defined():
    commands = _commands()
    assert {module for module, _, _ in commands} >= {"invcl_tf.train", "invcl_tf.evaluate",
                                                      "invcl_tf.report", "tuning.search"}
    defined = {}
    for module in {m for m, _, _ in commands}:
        proc = _run([sys.executable, "-c", f"import json, {module}; from absl import flags; "
                     "print(json.dumps(sorted(flags.FLAGS)))"], REPO, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        defined[module] = set(json.loads(proc.stdout.splitlines()[-1]))
    schema = configuration.base_config()
    for module, flags, words in commands:
        for flag in flags:
            name = flag[2:]
            if name.startswith("config."):
                node = schema
                for part in name[len("config."):].split("."):
                    assert part in node, f"{' '.join(words)}: no config field {name}"
                    node = node[part]
            else:
                assert name in defined[module], f"{' '.join(words)}: {module} has no {flag}"
