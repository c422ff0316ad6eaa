"""One training step's losses and gradients, in float64, on the running Keras backend: run by
``tests/test_backend_step.py`` once with TensorFlow (``write``: draws the weights and the
batch, saves them) and once with JAX, TensorFlow's import blocked (``read``: loads them), so
the two backends' steps are compared on the same numbers. Usage:
``python -m tests.backend_step write|read CASE DIRECTORY``."""

import os
import sys

if os.environ.get("KERAS_BACKEND") == "jax":
    sys.modules["tensorflow"] = None  # any `import tensorflow` on this path now fails
    import jax

    jax.config.update("jax_enable_x64", True)

import keras  # noqa: E402
import numpy as np  # noqa: E402

keras.config.set_floatx("float64")

from invcl_tf.models import InvCLRModel, build_encoder, build_projection_head  # noqa: E402
from invcl_tf.models import invclr  # noqa: E402
from invcl_tf.transforms import spirograph  # noqa: E402

BATCH, EXTRA = 6, 3
CASES = {"spirograph": spirograph.NUISANCE_RANGES,
         "spirograph_geometry": spirograph.geometric_ranges(30.0, 0.1)}


def _uniform(rng, ranges, shape):
    lo, hi = np.asarray(ranges, np.float64).T
    return lo + (hi - lo) * rng.uniform(size=shape + (len(lo),))


def draw_inputs(case):
    """Float64 weights (Keras's initialisers, seeded) and a Spirograph batch with signs."""
    keras.utils.set_random_seed(0)
    model = build(case)
    rng = np.random.default_rng(1)
    ranges = CASES[case]
    batch = {"x1": _uniform(rng, spirograph.TARGET_RANGES, (BATCH,)),
             "alpha1": _uniform(rng, ranges, (BATCH,)), "alpha2": _uniform(rng, ranges, (BATCH,)),
             "alpha_extra": _uniform(rng, ranges, (BATCH, EXTRA)),
             "aux1": np.zeros((BATCH, 0)), "aux2": np.zeros((BATCH, 0)),
             "sign_seed": np.zeros((BATCH, 2), np.int32)}
    batch["x2"] = batch["x1"]
    signs = np.where(rng.uniform(size=(BATCH, model.encoder.output_shape[-1])) < 0.5, -1.0, 1.0)
    weights = {f"w:{v.path}": np.asarray(v) for v in model.variables}
    return model, {**{f"b:{k}": v for k, v in batch.items()}, "signs": signs, **weights}


def build(case):
    encoder = build_encoder("resnet18", 1 / 16, (32, 32, 3))
    head = build_projection_head(encoder.output_shape[-1], output_dim=16)
    model = InvCLRModel(encoder, head, spirograph.SpirographTransform(CASES[case]),
                        gp_weight=0.5, gp_clip=1e9)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    model.optimizer.build(model.trainable_variables)
    return model


def step(model, inputs):
    """``{name: array}`` of the losses, the gradients and the new batch-norm statistics."""
    # Tensors: the renderer computes NumPy inputs in float32, as the training pipeline does.
    batch = {k[2:]: keras.ops.convert_to_tensor(v) for k, v in inputs.items()
             if k.startswith("b:")}
    # The signs come from the file: each backend's stateless streams differ.
    invclr.rademacher = lambda seed, shape: keras.ops.convert_to_tensor(inputs["signs"])
    if keras.backend.backend() == "jax":
        values = lambda vs: [v.value for v in vs]  # noqa: E731
        losses, non_trainable, grads = model.losses_and_gradients(
            values(model.trainable_variables), values(model.non_trainable_variables),
            values(model.optimizer.variables), batch)
    else:
        losses, grads = model.losses_and_gradients(batch)
        non_trainable = model.non_trainable_variables
    out = {f"loss:{k}": np.asarray(v) for k, v in losses.items()}
    out.update({f"grad:{v.path}": np.asarray(g) for v, g in zip(model.trainable_variables, grads)})
    out.update({f"state:{v.path}": np.asarray(x)
                for v, x in zip(model.non_trainable_variables, non_trainable)})
    return out


def main(mode, case, directory):
    path = os.path.join(directory, f"{case}_inputs.npz")
    if mode == "write":
        model, inputs = draw_inputs(case)
        np.savez(path, **inputs)
    else:
        inputs = dict(np.load(path))
        model = build(case)
        for v in model.variables:
            v.assign(inputs[f"w:{v.path}"])
    out = step(model, inputs)
    assert all(a.dtype == np.float64 for a in out.values()), {k: a.dtype for k, a in out.items()}
    np.savez(os.path.join(directory, f"{case}_{keras.backend.backend()}.npz"), **out)
    print("tensorflow imported:", sys.modules.get("tensorflow") is not None)


if __name__ == "__main__":
    main(*sys.argv[1:])
