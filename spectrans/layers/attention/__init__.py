"""Attention layers. All share ``forward(x, mask=None, return_attention=False)``."""

from spectrans.layers.attention.base import AttentionLayer

__all__ = ["AttentionLayer"]
