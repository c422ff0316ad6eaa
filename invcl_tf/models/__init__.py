"""Encoders, the projection head and the InvCLR training model."""

from invcl_tf.models.head import build_projection_head
from invcl_tf.models.invclr import InvCLRModel
from invcl_tf.models.resnet import ARCHS, build_encoder

__all__ = ["ARCHS", "InvCLRModel", "build_encoder", "build_projection_head"]
