"""Keras Tuner search over InvCLR's penalty strength λ (and friends)."""
