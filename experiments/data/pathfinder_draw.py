"""Drawing primitives of the Pathfinder generator, as the original ``snakes.py`` draws them.

A dash of length ``L`` and thickness ``t`` starting at an integer pixel with orientation
``theta`` is a white PIL line of width ``round(t aa)`` drawn at ``aa``x scale on a canvas of
``2 s aa + 1`` pixels (``s = L + ceil(t) + m``), from its centre to
``ceil(centre + L aa (sin theta, cos theta))``, then resized to ``2 s + 1`` pixels with old
``scipy.misc.imresize`` (bytescale to 8 bits, PIL Lanczos): the patch is a function of
``theta`` alone, so the generator draws each orientation once and pastes it. Its occupancy
mask is the same line dilated by a disk of radius ``m aa`` (``cv2.dilate``), resized alike.

All dilations here follow ``cv2.dilate``: ``out[p] = max_{d : K[d]} in[p + d - c]`` with ``c``
the kernel centre and pixels outside the image ignored (``scipy.ndimage.maximum_filter`` with
``cval=0`` on non-negative images is the same).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage


def translate(coord: tuple[int, int], theta: float, dist: float) -> tuple[int, int]:
    """``ceil(coord + dist (sin theta, cos theta))`` per axis (the original ``translate_coord``)."""
    return (
        int(math.ceil(coord[0] + float(dist) * np.sin(theta))),
        int(math.ceil(coord[1] + float(dist) * np.cos(theta))),
    )


def flip_by_pi(theta: float) -> float:
    """``theta + pi`` for ``theta < 0``, else ``theta - pi`` (stays in ``[-pi, pi]``)."""
    return theta + np.pi if theta < 0 else theta - np.pi


def bytescale(image: np.ndarray) -> np.ndarray:
    """Old ``scipy.misc.bytescale``: map ``[min, max]`` linearly onto ``[0, 255]``.

    ``b = floor((x - cmin) 255 / (cmax - cmin) + 0.5)`` clipped to ``[0, 255]``; uint8 input is
    returned unchanged and a constant image (``cmax == cmin``) maps to 0.

    Args:
        image: Image of any real dtype.

    Returns:
        uint8 image of the same shape.
    """
    if image.dtype == np.uint8:
        return image
    cmin, cmax = float(np.minimum.reduce(image, None)), float(np.maximum.reduce(image, None))
    scale = 255.0 / (cmax - cmin) if cmax > cmin else 255.0
    x = (image - cmin) * scale
    np.minimum(np.maximum(x, 0.0, out=x), 255.0, out=x)  # clip to [0, 255]
    return (x + 0.5).astype(np.uint8)


def imresize_lanczos(image: np.ndarray, size: int) -> np.ndarray:
    """Old ``scipy.misc.imresize(image, (size, size), interp='lanczos')``: bytescale, PIL resize.

    Args:
        image: ``(H, W)`` image (float input is bytescaled first).
        size: Output side.

    Returns:
        ``(size, size)`` uint8 image.
    """
    pil = Image.fromarray(bytescale(image))
    return np.asarray(pil.resize((size, size), resample=Image.Resampling.LANCZOS))


def disk_footprint(radius: int) -> np.ndarray:
    """``(2r+1, 2r+1)`` disk ``x^2 + y^2 <= r^2`` (the original `generate_dilation_struct`)."""
    y, x = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    return (x**2 + y**2) <= radius**2


def dilate(image: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    """``cv2.dilate(image, footprint)`` of a non-negative image (outside pixels ignored)."""
    return ndimage.maximum_filter(image, footprint=footprint, mode="constant", cval=0.0)


def dash_patches(
    theta: float, length: int, thickness: float, margin: int, aa: int
) -> tuple[np.ndarray, np.ndarray]:
    """The dash and its occupancy mask, ``(2s+1, 2s+1)`` each, its start on the centre pixel.

    Args:
        theta: Orientation in radians (row axis ``sin``, column axis ``cos``).
        length: Dash length ``L`` in pixels.
        thickness: Dash thickness ``t`` (``t aa`` must be an integer).
        margin: Margin ``m``: the mask is the line dilated by a disk of radius ``m aa``.
        aa: Supersampling factor.

    Returns:
        ``(line, mask)`` float64 in ``[0, 1]`` (multiples of 1/255; the mask rounded to
        float32, as the original stores it).
    """
    s = length + int(math.ceil(thickness)) + margin
    big = 2 * s * aa + 1
    centre = s * aa
    head = translate((centre, centre), theta, length * aa)
    blown = Image.new("F", (big, big), "black")
    ImageDraw.Draw(blown).line(
        [(centre, centre), (head[1], head[0])], fill="white", width=int(round(thickness * aa))
    )
    blown_arr = np.asarray(blown, dtype=np.float32)  # (big, big)
    line = imresize_lanczos(blown_arr, 2 * s + 1).astype(np.float64) / 255  # (2s+1, 2s+1)
    grown = dilate(blown_arr, disk_footprint(margin * aa)).astype(np.uint8)  # (big, big)
    mask = imresize_lanczos(grown, 2 * s + 1).astype(np.float64) / 255  # (2s+1, 2s+1)
    mask = mask.astype(np.float32).astype(np.float64)  # stored in a float32 image
    return line, mask


def place(shape: tuple[int, int], patch: np.ndarray, centre: tuple[int, int]) -> np.ndarray:
    """A zero image of ``shape`` with ``patch`` pasted centred on ``centre`` (clipped)."""
    out = np.zeros(shape, dtype=patch.dtype)
    h = patch.shape[0] // 2
    r0, c0 = centre[0] - h, centre[1] - h
    rs = slice(max(r0, 0), min(r0 + patch.shape[0], shape[0]))
    cs = slice(max(c0, 0), min(c0 + patch.shape[1], shape[1]))
    out[rs, cs] = patch[rs.start - r0 : rs.stop - r0, cs.start - c0 : cs.stop - c0]
    return out


def marker(size: int, centre: tuple[int, int], radius: float, aa: int) -> np.ndarray:
    """The original ``draw_circle``: a hard disk at ``aa``x scale, Lanczos down, 8 bits.

    At ``aa``x scale pixel ``(i, j)`` is set when ``(i - aa r0)^2 + (j - aa c0)^2 <= (aa radius)^2``
    for ``centre = (r0, c0)``; the ``(aa size)^2`` image is resized to ``size``.

    Args:
        size: Image side.
        centre: Marker pixel ``(row, col)``.
        radius: Disk radius in pixels.
        aa: Supersampling factor.

    Returns:
        ``(size, size)`` float64 in ``[0, 1]`` (float32 values, as the original's).
    """
    out = np.zeros((size, size))
    paste_marker(out, centre, radius, aa)
    return out


def paste_marker(image: np.ndarray, centre: tuple[int, int], radius: float, aa: int) -> None:
    """``image = max(image, marker(size, centre, radius, aa))`` for a non-negative ``image``.

    The marker is zero beyond ``reach = ceil(radius) + 7`` pixels of its centre (the disk,
    then 3 pixels of Lanczos support, twice), and PIL's integer-factor resize of the window
    ``centre +- reach`` cut at the image edges gives the whole-image numbers there: every
    output pixel's filter window is cut by the same image edges, or sees only zeros.
    """
    size = image.shape[0]
    reach = math.ceil(radius) + 7
    (r, c), hi = centre, size - 1
    up, down, left, right = min(r, reach), min(hi - r, reach), min(c, reach), min(hi - c, reach)
    patch = _marker_window(up, down, left, right, radius, aa)
    view = image[r - up : r + down + 1, c - left : c + right + 1]
    np.maximum(view, patch, out=view)


def _marker_full(size: int, centre: tuple[int, int], radius: float, aa: int) -> np.ndarray:
    """:func:`marker` computed on the whole image (the original's way)."""
    y, x = np.ogrid[
        -centre[0] * aa : (size - centre[0]) * aa, -centre[1] * aa : (size - centre[1]) * aa
    ]
    disk = ((x**2 + y**2) <= (radius * aa) ** 2).astype(np.float64)  # (size aa, size aa)
    return (imresize_lanczos(disk, size).astype(np.float32) / np.float32(255)).astype(np.float64)


@functools.lru_cache(maxsize=4096)
def _marker_window(up: int, down: int, left: int, right: int, radius: float, aa: int) -> np.ndarray:
    """The marker on rows ``-up .. down`` and columns ``-left .. right`` of its centre.

    Computed as :func:`_marker_full` does, on that window alone (bytescale, PIL Lanczos).
    """
    y, x = np.ogrid[-up * aa : (down + 1) * aa, -left * aa : (right + 1) * aa]
    disk = ((x**2 + y**2) <= (radius * aa) ** 2).astype(np.float64)  # (h aa, w aa)
    pil = Image.fromarray(bytescale(disk))
    small = pil.resize((left + right + 1, up + down + 1), resample=Image.Resampling.LANCZOS)
    return (np.asarray(small).astype(np.float32) / np.float32(255)).astype(np.float64)
