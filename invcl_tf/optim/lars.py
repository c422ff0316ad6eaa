"""LARS around PyTorch-style SGD with momentum, matching the InvCLR authors' optimiser.

The authors wrap ``torch.optim.SGD(momentum=0.9, weight_decay=1e-6)`` in torchlars' LARS. For
each parameter ``w`` with gradient ``g`` that amounts to::

    r   = trust * ||w|| / (||g|| + wd * ||w|| + eps)   if ||w|| > 0 and ||g|| > 0, else 1
    g   = (g + wd * w) * r
    buf = momentum * buf + g
    w   = w - lr * buf
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="invcl_tf")
class LARS(keras.optimizers.Optimizer):
    """Layer-wise adaptive rate scaling with coupled weight decay and PyTorch SGD momentum.

    Args:
        learning_rate: float or ``LearningRateSchedule``.
        momentum: SGD momentum coefficient.
        lars_weight_decay: L2 penalty added to the gradient before the trust-ratio scaling
            (coupled, as in ``torch.optim.SGD``); Keras' own decoupled ``weight_decay`` must
            stay ``None``.
        trust_coefficient: LARS trust coefficient.
        eps: added to the trust-ratio denominator.
        **kwargs: other ``keras.optimizers.Optimizer`` arguments (``name``, ``clipnorm``...).
    """

    def __init__(
        self,
        learning_rate=0.01,
        momentum=0.9,
        lars_weight_decay=1e-6,
        trust_coefficient=1e-3,
        eps=1e-8,
        **kwargs,
    ):
        # Keras' decoupled decay would shrink w before LARS sees it, on top of the coupled decay.
        if kwargs.get("weight_decay") is not None:
            raise ValueError(
                "LARS applies its own coupled decay; pass `lars_weight_decay`, not "
                f"`weight_decay` (got weight_decay={kwargs['weight_decay']})."
            )
        super().__init__(learning_rate=learning_rate, **kwargs)
        if momentum < 0:
            raise ValueError(f"`momentum` must be >= 0, got {momentum}.")
        self.momentum = float(momentum)
        self.lars_weight_decay = float(lars_weight_decay)
        self.trust_coefficient = float(trust_coefficient)
        self.eps = float(eps)

    def build(self, variables):
        """Creates one zero-initialised momentum buffer per variable."""
        if self.built:
            return
        super().build(variables)
        self.momentums = [
            self.add_variable_from_reference(reference_variable=v, name="momentum")
            for v in variables
        ]

    def update_step(self, gradient, variable, learning_rate):
        """Applies the LARS-scaled, weight-decayed gradient through SGD momentum."""
        dtype = variable.dtype
        learning_rate = ops.cast(learning_rate, dtype)
        # The trust ratio needs the norm of the whole gradient, so densify IndexedSlices.
        gradient = ops.convert_to_tensor(gradient, dtype=dtype)
        wd = ops.cast(self.lars_weight_decay, dtype)

        w_norm = ops.sqrt(ops.sum(ops.square(variable)))
        g_norm = ops.sqrt(ops.sum(ops.square(gradient)))
        # eps keeps the denominator positive, so the unselected branch of `where` is finite.
        ratio = self.trust_coefficient * w_norm / (g_norm + wd * w_norm + self.eps)
        ratio = ops.where(
            ops.logical_and(w_norm > 0, g_norm > 0), ratio, ops.ones_like(ratio)
        )
        scaled = (gradient + wd * variable) * ratio

        m = self.momentums[self._get_variable_index(variable)]
        # PyTorch keeps lr out of the buffer (buf = μ·buf + g; w -= lr·buf), unlike Keras SGD
        # (v = μ·v − lr·g); the two differ once the learning rate changes between steps.
        new_m = ops.add(ops.multiply(m, ops.cast(self.momentum, dtype)), scaled)
        self.assign(m, new_m)
        self.assign_sub(variable, ops.multiply(new_m, learning_rate))

    def get_config(self):
        """Returns the constructor arguments, including the base optimiser's."""
        config = super().get_config()
        config.update(
            {
                "momentum": self.momentum,
                "lars_weight_decay": self.lars_weight_decay,
                "trust_coefficient": self.trust_coefficient,
                "eps": self.eps,
            }
        )
        return config
