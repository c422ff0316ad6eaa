"""The encoder's batch norm: ``BatchNorm``, the running backend's training layer (a closed-form
gradient on TensorFlow, ``invcl_tf.tensorflow_plumbing.batch_norm``; Keras's own layer
differentiated by autodiff on JAX), with PyTorch's defaults."""

from invcl_tf import backends

#: The layer that trains fast on the running backend; same weights and config as Keras's.
BatchNorm = backends.plumbing("batch_norm").BatchNorm


def batch_norm(name, sync_bn=True, center=True, scale=True):
    """A ``BatchNorm`` layer with PyTorch's defaults (momentum 0.1, eps 1e-5).

    ``sync_bn=True`` reduces statistics across replicas (on one device: ordinary batch norm);
    ``False`` keeps them per replica, as the authors' ``DataParallel`` did.
    """
    # Keras' momentum is the weight of the old running value, i.e. 1 - PyTorch's momentum.
    return BatchNorm(momentum=0.9, epsilon=1e-5, center=center, scale=scale,
                     synchronized=sync_bn, name=name)
