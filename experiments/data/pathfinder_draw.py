"""Vectorised drawing primitives of the Pathfinder generator (numpy only, no per-pixel loops).

Coordinates are in output pixels, ``(row, col)``, with pixel ``i`` centred at ``i``. A
supersampled ("aa") pixel ``u`` of a window starting at output pixel ``o`` is centred at
``o + (u + 0.5) / aa - 0.5``. Values are floats in ``[0, 1]``; :func:`bytescale` makes the
final 8-bit image.

Dashes follow the original generator: a hard line of width ``thickness * aa`` drawn at ``aa``x
scale, brought down with a Lanczos-3 filter (the PIL convention), clipped and rounded to 8 bits.
"""

from __future__ import annotations

import functools

import numpy as np

_TIE = 1e-9  # breaks exact ties on pixel-centre boundaries the same way every time


def lanczos(x: np.ndarray, a: int = 3) -> np.ndarray:
    """Lanczos window ``L(x) = sinc(x) sinc(x / a)`` for ``|x| < a``, else 0.

    Args:
        x: Positions, any shape.
        a: Number of lobes.

    Returns:
        Kernel values, same shape as ``x``.
    """
    return np.where(np.abs(x) < a, np.sinc(x) * np.sinc(x / a), 0.0)


@functools.lru_cache(maxsize=32)
def lanczos_down_matrix(n_out: int, factor: int, a: int = 3) -> np.ndarray:
    """Matrix of a Lanczos downscale by an integer ``factor`` (PIL's ``Image.LANCZOS``).

    Output pixel ``i`` is centred at input position ``c_i = (i + 0.5) f``; input pixel ``x``
    gets weight ``w_ix = L((x + 0.5 - c_i) / f) / sum_x' L((x' + 0.5 - c_i) / f)``, the sum
    running over the full support ``|x + 0.5 - c_i| < a f``. The columns outside the window
    ``[0, n_out f)`` are dropped after normalising, so a window cut out of a larger image gives
    the same numbers as the whole image (the input is zero there).

    Args:
        n_out: Output window size.
        factor: Integer downscale factor (the antialias scale).
        a: Lanczos lobes.

    Returns:
        ``(n_out, n_out * factor)`` float64 matrix.
    """
    pad = a * factor
    x = np.arange(-pad, n_out * factor + pad)  # (n_in + 2 pad,)
    centres = (np.arange(n_out) + 0.5) * factor  # (n_out,)
    w = lanczos((x[None, :] + 0.5 - centres[:, None]) / factor, a)  # (n_out, n_in + 2 pad)
    w /= w.sum(axis=1, keepdims=True)
    w = w[:, pad : pad + n_out * factor]  # (n_out, n_in)
    w.setflags(write=False)
    return w


def aa_grid(half: int, aa: int) -> np.ndarray:
    """Supersampled pixel centres of a ``(2 half + 1)``-pixel window centred on pixel 0.

    Args:
        half: Window half size in output pixels.
        aa: Supersampling factor.

    Returns:
        ``((2 half + 1) aa,)`` offsets ``(u + 0.5) / aa - 0.5 - half`` in output pixels.
    """
    return (np.arange((2 * half + 1) * aa) + 0.5) / aa - 0.5 - half


def render_dashes(
    starts: np.ndarray, ends: np.ndarray, thickness: float, aa: int, half: int
) -> np.ndarray:
    """Antialiased dashes, each in a window centred on its (integer) start pixel.

    At ``aa``x scale a supersampled pixel with centre offset ``q`` from the start is on the dash
    iff its projection ``s = q . u`` on the unit direction ``u`` satisfies ``0 <= s <= L`` and
    its perpendicular distance ``|q x u| < w / (2 aa)`` with ``w = round(thickness aa)`` (flat
    caps, a PIL polygon line); for ``w <= 1`` the bound is ``max(|u_y|, |u_x|) / (2 aa)``, one
    pixel per step along the major axis (a PIL/Bresenham one-pixel line). The hard line ``B``
    is brought down with the Lanczos matrix ``W`` in two passes as PIL does on an 8-bit image
    (horizontal first), rounding and clipping to 8 bits after each:
    ``D = q(W q(B W^T))`` with ``q(x) = clip(floor(255 x + 1/2), 0, 255) / 255``.

    Args:
        starts: ``(D, 2)`` integer start pixels (only their offsets to ``ends`` matter).
        ends: ``(D, 2)`` float end points.
        thickness: Dash thickness in output pixels.
        aa: Supersampling factor.
        half: Window half size; must cover the dash plus 3 pixels of filter support.

    Returns:
        ``(D, 2 half + 1, 2 half + 1)`` dash intensities in ``[0, 1]``.
    """
    vec = np.asarray(ends, dtype=np.float64) - np.asarray(starts, dtype=np.float64)  # (D, 2)
    length = np.linalg.norm(vec, axis=1)  # (D,)
    unit = vec / length[:, None]  # (D, 2)
    g = aa_grid(half, aa)  # (A,)
    uy = unit[:, 0, None, None]  # (D, 1, 1)
    ux = unit[:, 1, None, None]  # (D, 1, 1)
    qy = g[None, :, None]  # (1, A, 1)
    qx = g[None, None, :]  # (1, 1, A)
    along = qy * uy + qx * ux + _TIE  # (D, A, A)
    across = qy * ux - qx * uy + _TIE  # (D, A, A)
    width = round(thickness * aa)  # in supersampled pixels, as the original rounds it
    if width <= 1:  # a one-pixel (Bresenham) line: one pixel per step of the major axis
        half_width = 0.5 * np.maximum(np.abs(uy), np.abs(ux)) / aa  # (D, 1, 1)
    else:
        half_width = np.full_like(uy, width / (2.0 * aa))  # (D, 1, 1)
    hard = (along >= 0) & (along <= length[:, None, None]) & (np.abs(across) < half_width)
    w = lanczos_down_matrix(2 * half + 1, aa)  # (n, A)
    across_cols = _to_8bit(hard.astype(np.float64) @ w.T)  # (D, A, n)
    return _to_8bit(w @ across_cols)  # (D, n, n)


def _to_8bit(x: np.ndarray) -> np.ndarray:
    """Round half up to 1/255 steps and clip to ``[0, 1]`` (an 8-bit image in between)."""
    return np.clip(np.floor(x * 255.0 + 0.5), 0.0, 255.0) / 255.0


def render_disk(radius: float, aa: int, half: int) -> np.ndarray:
    """Area coverage of a disk of ``radius`` centred on pixel 0 of a ``(2 half + 1)`` window.

    ``c_ij = mean over the aa x aa subpixels q of pixel (i, j) of [|q| <= radius]``; pixels
    wholly inside the disk get exactly 1.

    Args:
        radius: Disk radius in output pixels.
        aa: Supersampling factor.
        half: Window half size (at least ``ceil(radius)``).

    Returns:
        ``(2 half + 1, 2 half + 1)`` coverage in ``[0, 1]``.
    """
    g = aa_grid(half, aa)  # (A,)
    inside = (g[:, None] ** 2 + g[None, :] ** 2) <= radius**2 + _TIE  # (A, A)
    n = 2 * half + 1
    return inside.reshape(n, aa, n, aa).mean(axis=(1, 3))  # (n, n)


@functools.lru_cache(maxsize=64)
def ring_offsets(radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Integer offsets on the digital circle ``round(|d|) == round(radius)``, and their angles.

    Args:
        radius: Circle radius in pixels.

    Returns:
        ``(K, 2)`` int64 offsets ``(dy, dx)`` and ``(K,)`` angles ``atan2(dy, dx)``.
    """
    r = int(np.ceil(radius)) + 1
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]  # (2r+1, 2r+1)
    on = np.rint(np.hypot(dy, dx)) == np.rint(radius)
    offsets = np.stack([dy[on], dx[on]], axis=1).astype(np.int64)  # (K, 2)
    angles = np.arctan2(offsets[:, 0], offsets[:, 1]).astype(np.float64)  # (K,)
    offsets.setflags(write=False)
    angles.setflags(write=False)
    return offsets, angles


@functools.lru_cache(maxsize=16)
def window_offsets(half: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column offsets of a ``(2 half + 1)`` square window, as broadcastable grids.

    Args:
        half: Window half size.

    Returns:
        ``(2h+1, 1)`` row offsets and ``(1, 2h+1)`` column offsets (float64).
    """
    o = np.arange(-half, half + 1, dtype=np.float64)
    return o[:, None], o[None, :]


def segment_distance(vec: np.ndarray, half: int) -> np.ndarray:
    """Distance of each pixel centre of a window around a segment's start to the segment.

    For offset ``q`` and segment ``[0, v]``: ``t = clip(q . v / |v|^2, 0, 1)`` and
    ``d = |q - t v|`` (a capsule distance).

    Args:
        vec: ``(2,)`` segment vector ``end - start``.
        half: Window half size.

    Returns:
        ``(2 half + 1, 2 half + 1)`` distances.
    """
    oy, ox = window_offsets(half)
    vy, vx = float(vec[0]), float(vec[1])
    t = np.clip((oy * vy + ox * vx) / (vy * vy + vx * vx), 0.0, 1.0)  # (n, n)
    return np.hypot(oy - t * vy, ox - t * vx)  # (n, n)


def paste_max(canvas: np.ndarray, patch: np.ndarray, centre: tuple[int, int]) -> None:
    """``canvas[window] = max(canvas[window], patch)`` for a square patch centred at ``centre``.

    Args:
        canvas: ``(H, W)`` float image, modified in place.
        patch: ``(n, n)`` odd-sized patch.
        centre: Integer ``(row, col)`` of the patch centre (the window must fit in the canvas).
    """
    h = patch.shape[0] // 2
    r, c = centre
    view = canvas[r - h : r + h + 1, c - h : c + h + 1]
    np.maximum(view, patch, out=view)


def bytescale(image: np.ndarray) -> np.ndarray:
    """Old ``scipy.misc.bytescale``: map ``[min, max]`` linearly onto ``[0, 255]``.

    ``b = floor((x - cmin) 255 / (cmax - cmin) + 0.5)`` clipped to ``[0, 255]``; a constant
    image (``cmax == cmin``) maps to 0.

    Args:
        image: Float image.

    Returns:
        uint8 image of the same shape.
    """
    cmin, cmax = float(image.min()), float(image.max())
    scale = 255.0 / (cmax - cmin) if cmax > cmin else 0.0
    return (np.clip((image - cmin) * scale, 0.0, 255.0) + 0.5).astype(np.uint8)
