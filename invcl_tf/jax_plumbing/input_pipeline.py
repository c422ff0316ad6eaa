"""The training input pipeline on JAX: a ``keras.utils.PyDataset`` of global batches, each a
pure function of (seed, epoch, step) drawn by one jitted call (``invcl_tf.data.draws``), with
TensorFlow's pipeline's structure: each epoch a stateless permutation of the examples, whole
batches only, a resume starting at any step."""

import jax
import jax.numpy as jnp
import keras
import numpy as np

from invcl_tf.data import draws
from invcl_tf.jax_plumbing import stateless_random


class TrainBatches(keras.utils.PyDataset):
    """Batches from step ``start_step`` of epoch ``start_epoch`` to the end of ``epochs - 1``.

    Args:
      inputs: all training inputs, ``[N, ...]`` in memory (an array, or Spirograph's
        ``GeneratedTargets``).
      transform: a ``DifferentiableTransform``.
      batch_size, num_extra, seed: as ``invcl_tf.data.pipeline.train_dataset``'s.
      steps_per_epoch: whole batches per epoch.
    """

    def __init__(self, inputs, transform, batch_size, num_extra, seed, steps_per_epoch,
                 start_epoch, epochs, start_step=0):
        super().__init__()
        self.table = jnp.asarray(np.asarray(inputs))
        self.batch_size, self.steps = int(batch_size), int(steps_per_epoch)
        self.start = int(start_epoch) * self.steps + int(start_step)
        self.stop = int(epochs) * self.steps
        base = draws.fold(seed, draws.STREAM_TRAIN)
        self._epoch_seed = jax.jit(lambda epoch: draws.fold(base, epoch))
        self._permutation = jax.jit(
            lambda epoch_seed: jnp.argsort(stateless_random.uniform(epoch_seed,
                                                                    [len(self.table)])))
        self._epoch = None  # (epoch, its seed, its permutation): drawn once per epoch

        def draw(epoch, epoch_seed, order, step):
            rows = jax.lax.dynamic_slice_in_dim(order, step * self.batch_size, self.batch_size)
            drawn = draws.draw_views(transform, self.table[rows], draws.fold(epoch_seed, step),
                                     num_extra)
            drawn["step"] = jnp.full([self.batch_size], epoch * self.steps + step)
            return drawn

        self._draw = jax.jit(draw)

    def __len__(self):
        return self.stop - self.start

    def __getitem__(self, index):
        epoch, step = divmod(self.start + int(index), self.steps)
        if self._epoch is None or self._epoch[0] != epoch:
            epoch_seed = self._epoch_seed(epoch)
            self._epoch = epoch, epoch_seed, self._permutation(epoch_seed)
        return self._draw(*self._epoch, step)
