"""Checks a run's ``ml_collections`` config and compares it with a stored one."""

import json

import ml_collections

from invcl_tf import distribute
from invcl_tf.data.sources import CIFAR, NAMES as DATASETS
from invcl_tf.models.resnet import ARCHS


class ConfigError(ValueError):
    """A config field holds a value the run cannot use; the message names field and fix."""


def _require(condition, field, message):
    if not condition:
        raise ConfigError(f"--config.{field}: {message}")


def validate(config):
    """Raises ``ConfigError`` naming the first bad field and how to fix it."""
    _require(config.dataset.name in DATASETS, "dataset.name",
             f"unknown dataset {config.dataset.name!r}; choose one of {', '.join(DATASETS)}")
    _require(config.dataset.train_size >= 2, "dataset.train_size", "must be at least 2")
    _require(config.dataset.test_size >= 2, "dataset.test_size", "must be at least 2")
    if config.dataset.name in CIFAR:
        _require(config.dataset.get("color_strength", -1) >= 0, "dataset.color_strength",
                 "must be >= 0 (0.5 is the paper's)")
    _require(config.model.arch in ARCHS, "model.arch",
             f"unknown arch {config.model.arch!r}; choose one of {', '.join(sorted(ARCHS))}")
    _require(config.model.width_multiplier > 0, "model.width_multiplier", "must be > 0")
    _require(config.train.batch_size >= 2, "train.batch_size",
             f"must be at least 2 (NT-Xent needs negatives), got {config.train.batch_size}")
    _require(config.train.batch_size <= config.dataset.train_size, "train.batch_size",
             f"{config.train.batch_size} exceeds dataset.train_size "
             f"({config.dataset.train_size}); lower it")
    _require(config.distribute in distribute.STRATEGIES, "distribute",
             f"unknown strategy {config.distribute!r}; choose one of "
             f"{', '.join(distribute.STRATEGIES)}")
    _require(config.train.precision in distribute.PRECISIONS, "train.precision",
             f"unknown precision {config.train.precision!r}; choose one of "
             f"{', '.join(distribute.PRECISIONS)}")
    _require(config.train.epochs >= 1, "train.epochs", "must be at least 1")
    _require(config.train.base_lr > 0, "train.base_lr", "must be > 0")
    _require(config.train.temperature > 0, "train.temperature", "must be > 0")
    _require(config.gp.weight >= 0, "gp.weight",
             f"must be >= 0 (0 turns the penalty off), got {config.gp.weight}")
    _require(config.gp.clip > 0, "gp.clip", "must be > 0")
    _require(config.gp.num_extra >= 1, "gp.num_extra", "must be at least 1")
    passes = tuple(config.eval.num_passes)
    _require(len(passes) > 0 and all(int(m) >= 1 for m in passes), "eval.num_passes",
             "must be a non-empty list of integers >= 1, e.g. 1,10,30")
    _require(config.eval.probe_l2 >= 0, "eval.probe_l2", "must be >= 0")
    _require(0 < config.eval.probe_fraction <= 1, "eval.probe_fraction", "must be in (0, 1]")
    _require(0 < config.eval.test_fraction <= 1, "eval.test_fraction", "must be in (0, 1]")
    _require(config.eval.variance_copies >= 2, "eval.variance_copies", "must be at least 2")
    _require(config.eval.every_epochs >= 0, "eval.every_epochs", "must be >= 0 (0: never)")
    _require(config.eval.batch_size >= 1, "eval.batch_size", "must be at least 1")


def to_json(config):
    """The config as indented JSON text (tuples become lists)."""
    return json.dumps(config.to_dict(), indent=2, sort_keys=True)


def from_json(text):
    """A locked ConfigDict from ``to_json`` text."""
    return ml_collections.ConfigDict(json.loads(text)).lock()


def differences(a, b, prefix=""):
    """Dotted names of fields that differ between two config dicts."""
    fields = []
    for key in sorted(set(a) | set(b)):
        name = prefix + key
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            fields += differences(va, vb, name + ".")
        elif va != vb:
            fields.append(name)
    return fields
