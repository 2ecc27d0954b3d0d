"""Thumbnails of data set images for the report's error galleries.

Images are decoded by content, not by file name (COVID-CT has JPEG files
named .png): the first bytes choose the decoder that matplotlib's imread
uses. Thumbnails are box-filtered to at most `max_side` pixels and written
as PNG, so the report folder stays small and opens from disk.
"""
import io
import math

import numpy as np


def sniff(data):
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:3] == b"\xff\xd8\xff":
        return "jpg"
    return None


def load(path):
    """The image as float [H, W] (grey) or [H, W, 3] in [0, 1]."""
    import matplotlib.image as mpimg
    with open(path, "rb") as f:
        data = f.read()
    fmt = sniff(data)
    if fmt is None:
        raise ValueError(f"{path}: not a PNG or JPEG image")
    a = mpimg.imread(io.BytesIO(data), format=fmt)
    if np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.float64) / np.iinfo(a.dtype).max
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 3:
        a = a[..., :3]
        if a.shape[2] == 1 or (np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 0], a[..., 2])):
            a = a[..., 0]
    return np.clip(a, 0.0, 1.0)


def shrink(a, max_side=128):
    k = max(1, math.ceil(max(a.shape[0], a.shape[1]) / max_side))
    if k == 1:
        return a
    h, w = (a.shape[0] // k) * k, (a.shape[1] // k) * k
    a = a[:h, :w]
    return a.reshape(h // k, k, w // k, k, *a.shape[2:]).mean(axis=(1, 3))


def write_thumbnail(src, dst, max_side=128):
    import matplotlib.image as mpimg
    a = shrink(load(src), max_side)
    if a.ndim == 2:
        mpimg.imsave(dst, a, cmap="gray", vmin=0.0, vmax=1.0)
    else:
        mpimg.imsave(dst, a)
    return a.shape[1], a.shape[0]
