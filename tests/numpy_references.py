"""Formulas written out in NumPy and plain Python, independently of the code under test, for
checks on every backend (this module imports neither TensorFlow nor JAX)."""

import math

import numpy as np


def reference_nt_xent(z1, z2, temperature):
    """Loop over the 2B anchors: cosine / τ, self excluded, positive = the other view."""
    z = [list(map(float, row)) for row in np.concatenate([z1, z2], 0)]
    n, b = len(z), len(z1)

    def cosine(u, v):
        dot = sum(x * y for x, y in zip(u, v))
        return dot / (math.sqrt(sum(x * x for x in u)) * math.sqrt(sum(y * y for y in v)))

    total = 0.0
    for a in range(n):
        positive = a + b if a < b else a - b
        logits = {j: cosine(z[a], z[j]) / temperature for j in range(n) if j != a}
        top = max(logits.values())
        log_norm = top + math.log(sum(math.exp(v - top) for v in logits.values()))
        total += log_norm - logits[positive]
    return total / n


def numeric_grad(f, x, eps):
    """Central finite differences of scalar ``f`` at every entry of ``x``."""
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += eps
        down[idx] -= eps
        grad[idx] = (f(up) - f(down)) / (2 * eps)
    return grad


def naive_render(targets, nuisance, normalize="row"):
    """SPEC §3 literally: float64, a loop per image and per point, full 2-D squared distances.

    ``normalize=None`` skips the normalisation (the raw intensity, for checking the maxima).
    """
    targets = np.asarray(targets, np.float64)
    nuisance = np.asarray(nuisance, np.float64)
    grid = np.linspace(-6.0, 6.0, 32)
    u, v = np.meshgrid(grid, grid, indexing="ij")
    images = []
    for (m, b, sigma, rfore), (h, rback, gfore, gback, bfore, bback) in zip(targets, nuisance):
        a = m + b - h
        intensity = np.zeros((32, 32))
        for t in np.linspace(0.0, 2.0 * math.pi, 40):
            x = (a - b) * math.cos(t) + h * math.cos(t * (a - b) / b)
            y = (a - b) * math.sin(t) - h * math.sin(t * (a - b) / b)
            intensity += np.exp(-((u - x) ** 2 + (v - y) ** 2) / sigma)
        intensity /= 40.0
        if normalize == "row":
            for row in range(32):
                intensity[row] /= intensity[row].max() + 1e-8
        elif normalize == "image":
            intensity /= intensity.max() + 1e-8
        fore = np.array([rfore, gfore, bfore])
        back = np.array([rback, gback, bback])
        images.append(intensity[..., None] * fore + (1.0 - intensity[..., None]) * back)
    return np.stack(images)


# The colour jitter's matrices and luma weights as the authors write them.
T_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.321], [0.211, -0.523, 0.311]])
T_RGB = np.array([[1.0, 0.956, 0.621], [1.0, -0.272, -0.647], [1.0, -1.107, 1.705]])
GRAY = np.array([0.299, 0.587, 0.114])


def reference_jitter(images, params):
    """SPEC §2 literally, in float64, one image at a time."""
    out = []
    for x, (b, c, s, eta) in zip(np.asarray(images, np.float64), np.asarray(params, np.float64)):
        x = np.clip(x * b, 0.0, 1.0)
        x = np.clip(x * c + (x @ GRAY).mean() * (1.0 - c), 0.0, 1.0)
        x = np.clip(x * s + (x @ GRAY)[..., None] * (1.0 - s), 0.0, 1.0)
        theta = 2.0 * math.pi * eta
        rotation = np.array([[1.0, 0.0, 0.0],
                             [0.0, math.cos(theta), -math.sin(theta)],
                             [0.0, math.sin(theta), math.cos(theta)]])
        out.append(x @ (T_RGB @ rotation @ T_YIQ).T)
    return np.stack(out)
