"""Stored configs: JSON text typed by the schema, the fields two configs differ in, which of
them a resumed run may change, and evaluation-time overrides."""

import json

import ml_collections

from invcl_tf.configuration import ConfigError, base_config, validate

#: Fields a resumed run may change: they do not change what training computes.
RESUMABLE_CHANGES = ("eval.", "distribute", "train.jit_compile", "train.steps_per_execution",
                     "dataset.data_dir", "report.")
#: Fields ``invcl-evaluate`` may override on a trained run's config.
EVALUATION_OVERRIDES = ("eval.", "dataset.data_dir")


def training_changes(stored, current):
    """Splits the fields that differ into ``(refused, allowed)`` for resuming a run.

    Allowed are the ``RESUMABLE_CHANGES`` (evaluation, strategy, XLA); anything else changes
    what training computes.
    """
    # A field the schema gained after the run started counts as unchanged at its default.
    changed = differences(_with_defaults(stored, base_config().to_dict()), current)
    allowed = [f for f in changed if _matches(f, RESUMABLE_CHANGES)]
    return [f for f in changed if f not in allowed], allowed


def to_json(config):
    """The config as indented JSON text (tuples become lists)."""
    return json.dumps(config.to_dict(), indent=2, sort_keys=True)


def _with_defaults(stored, defaults):
    # Fields added to the schema after a run was stored take their defaults.
    merged = dict(stored)
    for key, value in defaults.items():
        if key not in merged:
            merged[key] = value
        elif isinstance(value, dict) and isinstance(merged[key], dict):
            merged[key] = _with_defaults(merged[key], value)
    return merged


def _assign(node, values):
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(node.get(key), ml_collections.ConfigDict):
            _assign(node[key], value)
        else:  # typed as the schema's field: JSON's lists become the schema's tuples
            node[key] = value


def from_json(text, locked=True):
    """A ConfigDict from ``to_json`` text, typed as ``base_config()`` (tuples stay tuples,
    placeholders stay settable, so ``--config.<field>=`` overrides work on it); fields it
    lacks take the schema's defaults."""
    config = base_config()
    _assign(config, json.loads(text))
    return config.lock() if locked else config


def _matches(field, prefixes):
    return any(field == p or (p.endswith(".") and field.startswith(p)) for p in prefixes)


def with_overrides(config, overrides, allowed=EVALUATION_OVERRIDES):
    """A copy of ``config`` with ``{dotted field: value}`` set; fields outside ``allowed``
    (prefixes ending in ``.`` or whole names) raise ``ConfigError``."""
    config = ml_collections.ConfigDict(config.to_dict())
    names = ", ".join(p + "*" if p.endswith(".") else p for p in allowed)
    for field, value in sorted(overrides.items()):
        if not _matches(field, allowed):
            raise ConfigError(f"--config.{field}: cannot be changed here; only {names} can "
                              "(train a new run to change the rest)")
        *sections, name = field.split(".")
        node = config
        for section in sections:
            node = node[section]
        node[name] = value
    validate(config)
    return config.lock()


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
