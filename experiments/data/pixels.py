"""Pixel helpers shared by the image and Pathfinder tasks."""

from __future__ import annotations

import numpy as np

GRAY_WEIGHTS = (0.2989, 0.5870, 0.1140)
PIXEL_VOCAB_SIZE = 256


def rgb_to_gray_tokens(rgb: np.ndarray) -> np.ndarray:
    """Grayscale tokens as TensorFlow's ``rgb_to_grayscale`` on uint8 images.

    ``g = (0.2989 R + 0.5870 G + 0.1140 B) / 255`` in float, then back to uint8 as
    ``convert_image_dtype`` does: ``floor(g * 255.5)``.

    Args:
        rgb: ``(..., 3)`` uint8.

    Returns:
        ``(...)`` uint8 in 0..255.
    """
    w = np.asarray(GRAY_WEIGHTS, dtype=np.float32)
    gray = (rgb.astype(np.float32) / 255.0) @ w  # (...)
    return np.clip(np.floor(gray * 255.5), 0, 255).astype(np.uint8)
