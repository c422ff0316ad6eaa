"""The shared math on Keras's JAX backend, with TensorFlow's import blocked: NT-Xent, the
gradient penalty (its inner ``jax.grad`` nested in an outer one), the Spirograph renderer
and the colour jitter against NumPy formulas and finite differences, and ``InvCLRModel``'s
JAX ``train_step`` under ``fit``. Run by
``tests/test_jax_backend.py`` in a subprocess, as ``KERAS_BACKEND=jax python -m
tests.jax_shared_math``; prints one line per check."""

import sys

sys.modules["tensorflow"] = None  # any `import tensorflow` on this path now fails

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from invcl_tf import losses, penalty  # noqa: E402
from invcl_tf.transforms import color, renderer  # noqa: E402
from tests.numpy_references import (  # noqa: E402
    naive_render, numeric_grad, reference_jitter, reference_nt_xent)


def check(name, ok, detail=""):
    print(f"{'ok' if ok else 'FAILED'} {name} {detail}", flush=True)
    if not ok:
        sys.exit(1)


def nt_xent_checks(rng):
    for b, p, tau in [(1, 3, 0.5), (3, 5, 1.0), (8, 16, 0.1)]:
        z1, z2 = rng.normal(size=(b, p)), rng.normal(size=(b, p))
        got = float(jax.jit(lambda a, c: losses.nt_xent(a, c, tau))(z1, z2))
        want = reference_nt_xent(z1, z2, tau)
        check(f"nt_xent b={b} p={p} tau={tau}", abs(got - want) <= 1e-10 * max(1.0, abs(want)),
              f"{got!r} {want!r}")
        grad = np.asarray(jax.grad(lambda a: losses.nt_xent(a, jnp.asarray(z2), tau))(z1))
        fd = numeric_grad(lambda a: reference_nt_xent(a, z2, tau), z1, 1e-6)
        check(f"nt_xent gradient b={b}", np.allclose(grad, fd, rtol=1e-6, atol=1e-8),
              f"{np.abs(grad - fd).max():.2e}")
    # Four shards, each against the global keys at its offset: their mean is the global loss.
    z1, z2 = rng.normal(size=(8, 6)), rng.normal(size=(8, 6))
    shards = [float(losses.nt_xent_against(z1[i:i + 2], z2[i:i + 2], z1, z2, i, 0.5))
              for i in range(0, 8, 2)]
    check("nt_xent over shards", abs(np.mean(shards) - reference_nt_xent(z1, z2, 0.5)) < 1e-12)


def _penalty_np(w, alpha, extra, signs, normalize):
    """The penalty of h = tanh(α W) by its definition, G = ∂(Σ ε·ĥ)/∂α by hand:
    ∂(ε·ĥ)/∂h = (ε − ĥ (ĥ·ε)) / ||h|| when normalised (else ε), then tanh' = 1 − h², then Wᵀ."""
    h = np.tanh(alpha @ w)
    upstream = signs
    if normalize:
        norm = np.linalg.norm(h, axis=1, keepdims=True)
        h_hat = h / norm
        upstream = (signs - h_hat * np.sum(h_hat * signs, axis=1, keepdims=True)) / norm
    g = (upstream * (1.0 - h ** 2)) @ w.T
    projection = np.einsum("bk,bnk->bn", g, extra - alpha[:, None, :])
    return float(np.mean(projection ** 2))


def penalty_checks(rng):
    b, k, d, n = 4, 3, 5, 6
    w = rng.normal(size=(k, d))
    alpha, extra = rng.uniform(0.5, 1.5, (b, k)), rng.uniform(0.5, 1.5, (b, n, k))
    signs = np.where(rng.uniform(size=(b, d)) < 0.5, -1.0, 1.0)
    for normalize in (False, True):
        def value(weights):
            fn = lambda a: jnp.tanh(a @ weights)  # noqa: E731
            return penalty.gradient_penalty(fn, alpha, extra, 1e9, normalize, signs)[0]

        got = float(jax.jit(value)(w))
        want = _penalty_np(w, alpha, extra, signs, normalize)
        check(f"penalty normalize={normalize}", abs(got - want) < 1e-12 * abs(want),
              f"{got!r} {want!r}")
        # Double backpropagation: the weights' gradient runs through the inner jax.grad.
        grad = np.asarray(jax.jit(jax.grad(value))(w))
        fd = numeric_grad(lambda v: _penalty_np(v, alpha, extra, signs, normalize), w, 1e-5)
        check(f"penalty weight gradient normalize={normalize}",
              np.allclose(grad, fd, rtol=1e-7, atol=1e-10), f"{np.abs(grad - fd).max():.2e}")
    clipped = float(penalty.gradient_penalty(lambda a: jnp.tanh(a @ w), alpha, extra, 1e-3,
                                             False, signs)[0])
    check("penalty clip", clipped == 1e-3)


def renderer_checks(rng):
    targets = np.stack([rng.uniform(2, 5, 3), rng.uniform(0.1, 1.1, 3), rng.uniform(0.25, 1, 3),
                        rng.uniform(0.4, 1, 3)], -1)
    nuisance = np.stack([rng.uniform(0.5, 2.5, 3)] + [rng.uniform(0, 1, 3) for _ in range(5)],
                        -1)
    for normalize in ("row", "image"):
        got = np.asarray(jax.jit(lambda t, n: renderer.render(t, n, normalize))(
            jnp.asarray(targets), jnp.asarray(nuisance)))
        err = np.abs(got - naive_render(targets, nuisance, normalize)).max()
        check(f"render {normalize}", got.dtype == np.float64 and err < 1e-10, f"{err:.2e}")
    weights = rng.normal(size=(3, 32, 32, 3))
    grad = np.asarray(jax.grad(lambda n: jnp.sum(weights * renderer.render(
        jnp.asarray(targets), n)))(jnp.asarray(nuisance)))
    fd = numeric_grad(lambda n: float(np.sum(weights * naive_render(targets, n))), nuisance,
                      1e-6)
    check("render nuisance gradient", np.allclose(grad, fd, rtol=1e-5, atol=1e-6),
          f"{np.abs(grad - fd).max():.2e}")


def color_checks(rng):
    images = rng.uniform(size=(3, 6, 5, 3))
    params = np.stack([rng.uniform(0.6, 1.4, 3), rng.uniform(0.6, 1.4, 3),
                       rng.uniform(0.6, 1.4, 3), rng.uniform(-0.1, 0.1, 3)], -1)
    got = np.asarray(jax.jit(color.jitter)(images, params))
    err = np.abs(got - reference_jitter(images, params)).max()
    check("colour jitter", got.dtype == np.float64 and err < 1e-12, f"{err:.2e}")
    weights = rng.normal(size=images.shape)
    grad = np.asarray(jax.grad(lambda p: jnp.sum(weights * color.jitter(images, p)))(params))
    fd = numeric_grad(lambda p: float(np.sum(weights * reference_jitter(images, p))), params,
                      1e-6)
    check("colour jitter gradient", np.allclose(grad, fd, rtol=1e-6, atol=1e-8),
          f"{np.abs(grad - fd).max():.2e}")
    masks = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    mixed = np.asarray(color.random_color(images, params, masks))
    gray = lambda x: np.repeat((x @ np.array(color.GRAY_WEIGHTS))[..., None], 3, -1)  # noqa
    want = np.stack([reference_jitter(images[:1], params[:1])[0], gray(images[1]),
                     gray(reference_jitter(images[2:], params[2:])[0])])
    check("random colour masks", np.abs(mixed - want).max() < 1e-12)


def rademacher_checks():
    seed = jnp.asarray([3, 7])
    a = np.asarray(penalty.rademacher(seed, (200, 50)))
    again = np.asarray(penalty.rademacher(seed, (200, 50)))
    other = np.asarray(penalty.rademacher(jnp.asarray([3, 8]), (200, 50)))
    check("rademacher ±1", set(np.unique(a)) == {-1.0, 1.0})
    check("rademacher stateless", np.array_equal(a, again) and not np.array_equal(a, other))
    check("rademacher balanced", abs(a.mean()) < 4 / np.sqrt(a.size), f"{a.mean():.4f}")


def fit_checks():
    from invcl_tf.models import InvCLRModel, build_encoder, build_projection_head
    from invcl_tf.transforms import spirograph

    transform = spirograph.SpirographTransform()
    encoder = build_encoder("resnet18", 1 / 16, (32, 32, 3))
    model = InvCLRModel(encoder, build_projection_head(encoder.output_shape[-1]), transform,
                        gp_weight=0.1, gp_clip=1e9)
    keras.utils.set_random_seed(0)
    rate = 0.05
    model.compile(optimizer=keras.optimizers.SGD(rate), jit_compile=True)
    model.optimizer.build(model.trainable_variables)
    b = 8
    batch = {"x1": spirograph.sample_targets([1, 2], b),
             "alpha1": transform.sample_params([3, 4], [b]),
             "alpha2": transform.sample_params([3, 5], [b]),
             "alpha_extra": transform.sample_params([3, 6], [b, 4]),
             "aux1": jnp.zeros((b, 0)), "aux2": jnp.zeros((b, 0)),
             "sign_seed": jnp.tile(jnp.asarray([[7, 8]], jnp.int32), (b, 1))}
    batch["x2"] = batch["x1"]
    # Copies: fit donates the variables' buffers to its compiled step.
    values = lambda vs: [np.array(v.value) for v in vs]  # noqa: E731
    before, state = values(model.trainable_variables), values(model.non_trainable_variables)
    losses, new_state, grads = jax.jit(model.losses_and_gradients)(
        before, state, values(model.optimizer.variables), batch)
    history = model.fit({k: np.asarray(v) for k, v in batch.items()}, batch_size=b, epochs=1,
                        shuffle=False, verbose=0).history
    # One SGD step from fit's state threading: w − rate·∂loss/∂w (to float32 rounding of w,
    # relative to the step), batch norm's statistics
    # those the step computed, the logs its losses.
    after = values(model.trainable_variables)
    error = max(float(np.abs(w1 - (w0 - rate * np.asarray(g))).max()
                      / np.abs(rate * np.asarray(g)).max()) for w0, w1, g in
                zip(before, after, grads))
    check("fit applies the step's gradients", error < 1e-4, f"{error:.2e}")
    moved = [not np.allclose(a, b) for a, b in zip(state, new_state)]
    same = max(float(np.abs(np.asarray(a) - b).max()) for a, b in
               zip(new_state, values(model.non_trainable_variables)))
    check("fit keeps batch norm's statistics", all(moved) and same < 1e-6, f"{same:.2e}")
    logged = {k: v[-1] for k, v in history.items()}
    check("fit logs the step's losses",
          all(abs(logged[k] - float(losses[k])) < 1e-4 * abs(float(losses[k])) + 1e-6
              for k in ("loss", "contrastive_loss", "penalty"))
          and float(losses["penalty"]) > 0 and abs(logged["learning_rate"] - rate) < 1e-8,
          f"{logged} {({k: float(v) for k, v in losses.items()})}")


def main():
    check("backend", keras.backend.backend() == "jax", keras.backend.backend())
    rng = np.random.default_rng(0)
    nt_xent_checks(rng)
    penalty_checks(rng)
    renderer_checks(rng)
    color_checks(rng)
    rademacher_checks()
    fit_checks()
    check("no tensorflow imported", sys.modules.get("tensorflow") is None)
    print("all passed")


if __name__ == "__main__":
    main()
