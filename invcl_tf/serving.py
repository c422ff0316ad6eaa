"""SavedModel export for inference, with feature averaging traced into the graph.

The archive holds no Python: the transformation's sampling and rendering are traced into its
functions, so ``tf.saved_model.load`` works in a process that never imports ``invcl_tf``.
"""

import contextlib
import logging
import os
import re

import keras
import tensorflow as tf
from absl import logging as absl_logging

from invcl_tf import errors, stored_configs, workdir
from invcl_tf.data import draws, sources



def averaged_representation(encoder, transform, inputs, num_samples, seed):
    """Mean of ``h`` over ``num_samples`` random views of ``inputs``, keyed on ``seed``.

    Views are drawn as in training (``prepare_view``, α and the random-apply choices, then
    ``apply``), encoder in inference mode; deterministic for a given ``seed``.
    """
    num_samples = tf.convert_to_tensor(num_samples, tf.int32)
    check = tf.debugging.assert_greater_equal(
        num_samples, 1, message="encode_averaged: num_samples must be >= 1")
    with tf.control_dependencies([check]):
        base = tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)])
    dim = encoder.output_shape[-1]

    def add_view(m, total):
        x, alpha, aux = draws.random_view(transform, inputs, draws.fold(base, m))
        h = encoder(transform.apply(x, alpha, aux), training=False)
        return m + 1, total + tf.cast(h, tf.float32)

    # An explicit loop: export traces without AutoGraph, and M is only known at serving time.
    _, total = tf.while_loop(lambda m, _: m < num_samples, add_view,
                             (tf.constant(0), tf.zeros([tf.shape(inputs)[0], dim], tf.float32)))
    return total / tf.cast(num_samples, tf.float32)


def build_archive(encoder, head, transform, input_shape, config_json):
    """A ``keras.export.ExportArchive`` with the endpoints listed in ``export``'s docstring."""
    archive = keras.export.ExportArchive()
    archive.track(encoder)
    archive.track(head)
    dim = encoder.output_shape[-1]
    image_shape = (transform.image_size, transform.image_size, 3)  # the run's resolution
    images = tf.TensorSpec([None, *image_shape], tf.float32, name="images")

    def encode(images):
        return tf.cast(encoder(transform.normalize_images(images), training=False),
                       tf.float32)

    # The first endpoint becomes serving_default.
    archive.add_endpoint("encode", encode, [images])
    archive.add_endpoint(
        "encode_averaged",
        lambda inputs, num_samples, seed: averaged_representation(
            encoder, transform, inputs, num_samples, seed),
        [tf.TensorSpec([None, *input_shape], tf.float32, name="inputs"),
         tf.TensorSpec([], tf.int32, name="num_samples"),
         tf.TensorSpec([], tf.int32, name="seed")])
    archive.add_endpoint(
        "project", lambda h: tf.cast(head(h, training=False), tf.float32),
        [tf.TensorSpec([None, dim], tf.float32, name="h")])
    archive.add_endpoint(
        "encode_training",
        lambda images: tf.cast(encoder(transform.normalize_images(images), training=True),
                               tf.float32),
        [images])
    archive.add_endpoint(
        "encode_normalized",
        lambda images: tf.cast(encoder(images, training=False), tf.float32),
        [tf.TensorSpec([None, *image_shape], tf.float32, name="normalized_images")])
    archive.add_endpoint("config", lambda: tf.constant(config_json), [])
    return archive


def export(encoder, head, transform, input_shape, config_json, path):
    """Writes the inference SavedModel to ``path``.

    Endpoints (``serving_default`` is ``encode``):
      encode(images [B,S,S,3] in [0, 1], S = transform.image_size) -> h, the representation
        (normalisation inside);
      encode_averaged(inputs, num_samples, seed) -> mean of h over random training views
        (Spirograph: inputs are target vectors [B, 4]; CIFAR: images in [0, 1]);
      project(h) -> the contrastive projection; encode_training(images) -> h with batch norm
        in training mode, updating the moving averages (``FineTunableTFSMLayer`` fine-tunes);
      encode_normalized(normalized images) -> h; config() -> the run's config as JSON.
    """
    build_archive(encoder, head, transform, input_shape, config_json).write_out(
        path, verbose=False)
    return path


def export_run(run_dir, output=None):
    """Exports the trained run in ``run_dir`` as an inference SavedModel (default
    ``run_dir/export``), in float32 whatever precision it trained in; returns its path."""
    config = workdir.load_config(run_dir)
    transform, input_shape = sources.transform_for(config)
    return export(workdir.load_encoder(run_dir),
                  workdir.load_encoder(run_dir, workdir.HEAD_FILE), transform, input_shape,
                  stored_configs.to_json(config),
                  output or os.path.join(run_dir, workdir.EXPORT_DIR))


class _WithoutUnsavedGradientWarnings(logging.Filter):
    """Drops TF's "Importing a function ... with ops with unsaved custom gradients" warnings.

    One per batch-norm layer is printed at every load (about 80 for a ResNet-18): the custom
    gradient is batch norm's closed-form one, which the export does not save. It is harmless
    here: what differentiates an export (fine-tuning through ``encode_training``, the penalty
    estimate of ``invcl-evaluate --saved_model``) gets TF's gradient of the saved ops, and
    tests/test_serving.py fine-tunes and estimates through one.
    """

    def filter(self, record):
        return "unsaved custom gradients" not in record.getMessage()


@contextlib.contextmanager
def _quiet_load():
    # TF's saved_model code logs through absl's logger, not tf.get_logger().
    logger, quiet = absl_logging.get_absl_logger(), _WithoutUnsavedGradientWarnings()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def _keras_weight_name(variable_name):
    """``"stem_conv/kernel:0"`` -> ``"stem_conv_kernel"``: a name Keras optimizers can extend."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", re.sub(r":\d+$", "", variable_name))


@keras.saving.register_keras_serializable(package="invcl_tf")
class FineTunableTFSMLayer(keras.layers.TFSMLayer):
    """``keras.layers.TFSMLayer`` over an export that any Keras optimizer can fine-tune.

    Defaults to the ``encode`` / ``encode_training`` endpoints: takes images in [0, 1], returns
    h. In ``fit`` (``training=True``) batch norm uses batch statistics and updates the export's
    moving averages; with ``trainable=False`` the layer runs in inference mode, moving averages
    untouched, as a frozen ``keras.layers.BatchNormalization`` does.
    """

    def __init__(self, filepath, call_endpoint="encode",
                 call_training_endpoint="encode_training", **kwargs):
        with _quiet_load():
            super().__init__(filepath, call_endpoint=call_endpoint,
                             call_training_endpoint=call_training_endpoint, **kwargs)

    def _add_existing_weight(self, weight):
        # TFSMLayer names each Keras weight after the restored tf.Variable with only "/"
        # replaced, so it keeps the ":0" every eager variable name ends with. Optimizers name
        # their slots "{weight path}_momentum" (Adam, SGD with momentum, ...) and TF rejects
        # the ":" in that scope name, so the first fit fails. Wrapping the same variable under
        # a clean name keeps the endpoints reading and the optimizer updating one variable.
        self._track_variable(keras.Variable(
            initializer=weight, trainable=weight.trainable, dtype=weight.dtype,
            shape=weight.shape, name=_keras_weight_name(weight.name)))

    def call(self, inputs, training=False, **kwargs):
        # encode_training would otherwise update the moving averages of a frozen encoder.
        return super().call(inputs, training=training if self.trainable else False, **kwargs)


class SavedEncoder:
    """A loaded SavedModel standing in for a Keras encoder in ``invcl_tf.eval_protocol``."""

    def __init__(self, path):
        try:
            with _quiet_load():
                self.module = tf.saved_model.load(path)
        except (OSError, ValueError) as err:
            raise errors.InputError(f"--saved_model={path}: no readable SavedModel there ({err}); "
                             "write one with invcl-export") from err
        dim = self.module.project.concrete_functions[0].structured_input_signature[0][0].shape[-1]
        self.output_shape = (None, int(dim))

    def __call__(self, images, training=False):
        del training  # the exported encoder is used in inference mode
        return self.module.encode_normalized(tf.cast(images, tf.float32))

    def config_json(self):
        """The exporting run's config."""
        return self.module.config().numpy().decode()
