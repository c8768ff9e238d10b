"""Layers: attention, spectral mixing, positional encodings, blocks."""
