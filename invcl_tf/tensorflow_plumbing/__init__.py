"""TensorFlow's plumbing for the shared math: gradients through ``tf.GradientTape``,
``tf.random`` stateless draws and ``tf.distribute`` replica reductions."""
