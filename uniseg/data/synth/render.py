"""Turn a drawn scene into a camera image in a dataset's visual domain.

Albedo -> material texture (cheap value noise, stronger on grass and leaves) -> haze with depth
-> lighting (brightness, tint, night, light sources) -> saturation, contrast, gamma, vignette ->
8-bit -> lens blur -> sensor noise. The label is never touched: only the image carries the domain.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from uniseg.data.synth.classes import FINE, N_FINE
from uniseg.data.synth.sampling import smooth_noise, uniform
from uniseg.data.synth.scene import Scene

# Texture strength per fine class (multiplied by the domain's `texture`).
_TEX = np.full(256, 0.06, np.float32)
for _name, _amp in {
    "road": 0.10, "parking": 0.10, "bike_lane": 0.08, "pothole": 0.15, "sidewalk": 0.07, "terrain": 0.30,
    "vegetation": 0.35, "sky": 0.01, "building": 0.08, "wall": 0.12, "lane_marking": 0.05, "crosswalk_marking": 0.05,
    "car": 0.03, "truck": 0.04, "bus": 0.03, "ego_vehicle": 0.02, "person": 0.05, "guard_rail": 0.04,
}.items():
    _TEX[getattr(FINE, _name)] = _amp
assert N_FINE <= 256


def render(scene: Scene, look: dict, rng: np.random.Generator) -> np.ndarray:
    """The RGB uint8 image of ``scene`` under the dataset's ``look`` (domains.yaml)."""
    H, W = scene.fine.shape
    lab = scene.fine
    # Planar float32 (3, H, W), as the scene's albedo: every step below is a contiguous H x W
    # operation per channel, several times faster than broadcasting H x W x 1 factors over RGB.
    img = scene.albedo.copy()

    n1 = smooth_noise(rng, H, W, max(H // 10, 2), max(W // 10, 2))
    n2 = smooth_noise(rng, H, W, 2, 2)
    amp = np.take(_TEX, lab) * np.float32(look["texture"])
    img *= 1.0 + amp * (0.5 * n1 + 0.8 * n2)

    vis = float(look["visibility"]) * uniform(rng, (0.7, 1.3))
    haze = np.array(look["haze"], np.float32) / 255.0
    if scene.night:
        haze = haze * 0.12
    a = np.minimum(scene.depth, np.float32(1e4))
    a *= np.float32(-1.0 / vis)
    np.exp(a, out=a)
    a = np.float32(1.0) - a
    a[lab == FINE.sky] = 0.1
    for c in range(3):
        img[c] += (haze[c] - img[c]) * a

    # lighting, tint, saturation and contrast as one colour matrix: out = img @ M + offset
    gain = uniform(rng, look["brightness"]) * (0.4 if scene.night else 1.0)
    tint = np.array(look["tint"], np.float32) * (1 + 0.02 * rng.standard_normal(3)).astype(np.float32)
    if scene.night:
        tint = tint * np.array([0.85, 0.9, 1.15], np.float32)
    sat = float(look["saturation"])
    contrast = float(look["contrast"])
    S = sat * np.eye(3, dtype=np.float32) + np.float32((1 - sat) / 3.0)
    M = (np.diag(tint * np.float32(gain)) @ S * np.float32(contrast)).astype(np.float32)
    # by hand, per output channel: a BLAS matmul may spawn threads (and is no faster here)
    out = np.empty_like(img)
    offset = np.float32(0.45 * (1 - contrast))
    for c in range(3):
        np.multiply(img[0], M[0, c], out=out[c])
        out[c] += img[1] * M[1, c]
        out[c] += img[2] * M[2, c]
        out[c] += offset
    img = out
    if scene.emit.any():
        lit = scene.emit
        for c in range(3):
            img[c][lit] = np.maximum(img[c][lit], scene.albedo[c][lit] * np.float32(1.1))
    np.clip(img, 0.0, 1.0, out=img)
    gamma = float(look["gamma"])
    if gamma != 1.0:
        img **= np.float32(1.0 / gamma)
    vig = float(look["vignette"])
    if vig > 0:
        yy = (np.arange(H, dtype=np.float32) + 0.5) / H * 2 - 1
        xx = (np.arange(W, dtype=np.float32) + 0.5) / W * 2 - 1
        img *= np.float32(1.0) - np.float32(0.5 * vig) * (yy[:, None] ** 2 + xx[None, :] ** 2)

    img *= np.float32(255.0)
    img += np.float32(0.5)
    planes = img.astype(np.uint8)
    blur = float(look["blur"]) * uniform(rng, (0.7, 1.3)) * (W / 512.0)
    rgb = Image.merge("RGB", [Image.fromarray(p) for p in planes])
    if blur > 0.15:
        rgb = rgb.filter(ImageFilter.GaussianBlur(blur))
    out = np.asarray(rgb)
    noise = float(look["noise"]) * (1.8 if scene.night else 1.0)
    if noise > 0:
        # uniform sensor noise (std ``noise`` of full scale): random bytes are the cheapest numbers to draw
        grain = np.frombuffer(rng.bytes(H * W * 3), np.uint8).reshape(H, W, 3).astype(np.float32)
        grain -= np.float32(127.5)
        grain *= np.float32(noise * 255.0 / 73.9)
        grain += out
        np.clip(grain, 0, 255, out=grain)
        out = grain.astype(np.uint8)
    return np.array(out) if not out.flags.writeable else out
