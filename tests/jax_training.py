"""Training on Keras's JAX backend with TensorFlow's import blocked: the input pipeline's
batches are pure functions of (seed, epoch, step), and ``fit`` (LARS, the warm-up + cosine
schedule, the penalty) resumed after an epoch from the variables' values ends where the
uninterrupted run does, bit for bit; on two host devices under ``DataParallel`` it trains as
one device does (``--distribution``, in float64). The trained encoder and head are saved as
``invcl-train`` saves them, for TensorFlow to load. Run by ``tests/test_jax_training.py`` as
``KERAS_BACKEND=jax python -m tests.jax_training DIRECTORY|--distribution``; prints one line per
check."""

import os
import sys

sys.modules["tensorflow"] = None  # any `import tensorflow` on this path now fails

import keras  # noqa: E402
import numpy as np  # noqa: E402

from invcl_tf.jax_plumbing.input_pipeline import TrainBatches  # noqa: E402
from invcl_tf.models import InvCLRModel, build_encoder, build_projection_head  # noqa: E402
from invcl_tf.models.rebuild import rebuilt  # noqa: E402
from invcl_tf.optim.lars import LARS  # noqa: E402
from invcl_tf.optim.schedules import WarmupCosine  # noqa: E402
from invcl_tf.transforms import spirograph  # noqa: E402

def check(name, ok, detail=""):
    print(f"{'ok' if ok else 'FAILED'} {name} {detail}", flush=True)
    if not ok:
        sys.exit(1)


N, BATCH, EXTRA, EPOCHS, SEED = 64, 16, 4, 2, 5
STEPS = N // BATCH


def batches(targets, start_epoch=0, start_step=0, epochs=EPOCHS):
    return TrainBatches(targets, spirograph.SpirographTransform(), BATCH, EXTRA, SEED, STEPS,
                        start_epoch, epochs, start_step)


def pipeline_checks(targets):
    whole = batches(targets)
    check("batches in all", len(whole) == EPOCHS * STEPS, str(len(whole)))
    first = [whole[i] for i in range(len(whole))]
    resumed = batches(targets, 1, 3)[0]
    check("a resumed pipeline draws what the whole one drew",
          all(np.array_equal(resumed[k], first[STEPS + 3][k]) for k in resumed))
    check("drawn again, the same", all(np.array_equal(whole[2][k], first[2][k]) for k in first[2]))
    rows = np.concatenate([np.asarray(b["x1"]) for b in first[:STEPS]])
    table = np.asarray(targets)
    found = [int(np.flatnonzero((table == r).all(1))[0]) for r in rows]
    check("an epoch is a permutation", sorted(found) == list(range(N)), str(sorted(found)[:8]))
    again = np.concatenate([np.asarray(b["x1"]) for b in first[STEPS:]])
    check("epochs are shuffled apart", not np.array_equal(rows, again))
    check("the views differ", not np.array_equal(first[0]["alpha1"], first[0]["alpha2"]))


def model():
    keras.utils.set_random_seed(0)
    encoder = build_encoder("resnet18", 1 / 16, (32, 32, 3))
    invclr = InvCLRModel(encoder, build_projection_head(encoder.output_shape[-1]),
                         spirograph.SpirographTransform(), gp_weight=0.01, gp_clip=1000.0)
    invclr.compile(optimizer=LARS(learning_rate=WarmupCosine(0.3, EPOCHS, STEPS, 1)),
                   jit_compile=True)
    invclr.optimizer.build(invclr.trainable_variables)
    return invclr


def values(invclr):
    return [np.array(v.value) for v in invclr.variables + invclr.optimizer.variables]


def fit_checks(targets):
    full = model()
    start = values(full)
    history = full.fit(batches(targets), epochs=EPOCHS, steps_per_epoch=STEPS, verbose=0)
    losses = history.history["loss"]
    check("fit trains", np.all(np.isfinite(losses)) and history.history["penalty"][-1] > 0,
          str(history.history))
    check("every variable moved or is a count",
          sum(not np.array_equal(a, b) for a, b in zip(start, values(full))) > len(start) // 2)
    first = model()
    first.fit(batches(targets, epochs=1), epochs=1, steps_per_epoch=STEPS, verbose=0)
    snapshot = values(first)
    resumed = model()
    for variable, value in zip(resumed.variables + resumed.optimizer.variables, snapshot):
        variable.assign(value)
    resumed.fit(batches(targets, 1), epochs=EPOCHS, initial_epoch=1, steps_per_epoch=STEPS,
                verbose=0)
    error = max(float(np.abs(a.astype(float) - b.astype(float)).max()
                      / max(np.abs(a).max(), 1e-12)) for a, b in zip(values(full), values(resumed)))
    # 0.0 on this CPU (XLA's compiled step is deterministic); held to 1e-6 relative. Keras's
    # shuffling of the batches' order, before it was turned off, moved weights by up to 9.0.
    check("a run resumed after an epoch ends where the whole run does", error < 1e-6,
          f"{error:.2e}")
    return full


def distribution_checks():
    """In float64 (the network): two devices compute what one does."""
    import jax

    jax.config.update("jax_enable_x64", True)
    keras.config.set_floatx("float64")
    targets = spirograph.sample_targets([0, 1], N)
    devices = jax.devices()
    check("two host devices", len(devices) == 2, str(devices))
    one = model()
    one.fit(batches(targets, epochs=1), epochs=1, steps_per_epoch=STEPS, verbose=0)
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    try:
        two = model()
        two.fit(batches(targets, epochs=1), epochs=1, steps_per_epoch=STEPS, verbose=0)
    finally:
        keras.distribution.set_distribution(None)
    kernel = two.trainable_variables[0].value
    check("DataParallel keeps the variables on both devices",
          len(kernel.sharding.device_set) == 2, str(kernel.sharding))
    # The same global batch: negatives, signs and batch statistics over all of it, so two
    # devices compute what one does. The pipeline's draws, the renderer and so the penalty's
    # algebra stay float32 (as in training), whose sums the devices split differently: 2e-6
    # after 4 steps; statistics per device would move the weights by orders more.
    error = max(float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-12))
                for a, b in zip(values(one), values(two)) if a.dtype.kind == "f")
    check("two devices train as one does", error < 2e-5, f"{error:.2e}")


def save_trained(invclr, directory):
    """The encoder and head as ``invcl-train`` saves them (Keras's own layers), with images
    and their representations and projections here, for ``tests/test_jax_training.py`` to
    load under TensorFlow."""
    for part, name in ((invclr.encoder, "encoder.keras"), (invclr.head, "head.keras")):
        rebuilt(part, plain=True).save(os.path.join(directory, name))
    transform = spirograph.SpirographTransform()
    images = transform.apply(spirograph.sample_targets([7, 8], 8),
                             transform.sample_params([7, 9], [8]), None)
    h = invclr.encoder(images, training=False)
    np.savez(os.path.join(directory, "outputs.npz"), images=np.asarray(images),
             h=np.asarray(h), z=np.asarray(invclr.head(h, training=False)))


def main(directory):
    check("backend", keras.backend.backend() == "jax", keras.backend.backend())
    targets = spirograph.sample_targets([0, 1], N)
    pipeline_checks(targets)
    save_trained(fit_checks(targets), directory)
    check("no tensorflow imported", sys.modules.get("tensorflow") is None)
    print("all passed")


if __name__ == "__main__":
    if sys.argv[1] == "--distribution":
        distribution_checks()
        print("all passed")
    else:
        main(sys.argv[1])
