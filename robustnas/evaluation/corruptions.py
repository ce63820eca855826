"""Common corruptions: CIFAR-10-C / CIFAR-100-C files when present, else generated ones.

**On disk** (Hendrycks & Dietterich, 2019): a directory with ``<corruption>.npy`` arrays of
``5 × M`` uint8 images ``(5M, H, W, C)`` (severity 1 first; ``M = 10,000`` for CIFAR) and
``labels.npy`` with their ``5M`` labels. Every ``*.npy`` other than ``labels.npy`` is taken
as one corruption; of each severity block the first ``n`` images are used.

**Generated** (no files needed, all batched tensor code except JPEG): seven of the fifteen
corruptions with the CIFAR-10-C severity parameters of the reference generation script:

==================  =========================================  =============================
corruption          operation (x in [0, 1])                     severities 1 … 5
==================  =========================================  =============================
gaussian_noise      ``x + N(0, c²)``                             c = .04 .06 .08 .09 .10
shot_noise          ``Poisson(c·x) / c``                         c = 500 250 100 75 50
gaussian_blur       Gaussian filter σ = c, radius ⌈4σ⌉,          c = .4 .6 .7 .8 1.0
                    edge pixels replicated (skimage's default
                    truncation and "nearest" mode)
contrast            ``(x - m)·c + m``, m = per-image per-channel c = .75 .5 .4 .3 .15
                    mean
brightness          HSV value ``V ← min(V + c, 1)`` at fixed     c = .05 .1 .15 .2 .3
                    hue/saturation, i.e. ``x·V'/V``
                    (``x + c`` for one-channel images)
jpeg_compression    PIL JPEG encode/decode at quality c          c = 80 65 58 50 40
pixelate            box-downsample to ``⌊c·H⌋`` (area             c = .95 .9 .85 .75 .65
                    interpolation), nearest upsample to H
==================  =========================================  =============================

Every result is clipped to [0, 1] and quantised to uint8 like the stored datasets.
Differences to the files: the noise is drawn from a seeded ``torch.Generator`` (not NumPy's
global RNG), pixelate upsamples with nearest instead of PIL's box filter, and images
smaller than 32×32 (e.g. 8×8 digits) use the same parameters, which makes blur and
pixelate relatively stronger there. Numbers from generated corruptions are therefore
comparable across models evaluated here, not with published CIFAR-10-C tables.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from robustnas.errors import DataError

SEVERITIES = (1, 2, 3, 4, 5)

PARAMS: dict[str, tuple[float, ...]] = {
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),
    "shot_noise": (500, 250, 100, 75, 50),
    "gaussian_blur": (0.4, 0.6, 0.7, 0.8, 1.0),
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),
    "brightness": (0.05, 0.1, 0.15, 0.2, 0.3),
    "jpeg_compression": (80, 65, 58, 50, 40),
    "pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),
}

Corruption = Callable[[torch.Tensor, float, torch.Generator | None], torch.Tensor]


def _gaussian_noise(x: torch.Tensor, c: float, gen: torch.Generator | None) -> torch.Tensor:
    return x + c * torch.randn(x.shape, generator=gen, device=x.device)


def _shot_noise(x: torch.Tensor, c: float, gen: torch.Generator | None) -> torch.Tensor:
    return torch.poisson(x * c, generator=gen) / c


def _gaussian_blur(x: torch.Tensor, sigma: float, gen: torch.Generator | None) -> torch.Tensor:
    radius = max(1, math.ceil(4.0 * sigma))
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    padded = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    out = F.conv2d(padded, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(out, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def _contrast(x: torch.Tensor, c: float, gen: torch.Generator | None) -> torch.Tensor:
    mean = x.mean(dim=(2, 3), keepdim=True)
    return (x - mean) * c + mean


def _brightness(x: torch.Tensor, c: float, gen: torch.Generator | None) -> torch.Tensor:
    if x.shape[1] != 3:
        return x + c
    v = x.amax(dim=1, keepdim=True)
    v_new = (v + c).clamp(max=1.0)
    # Scaling RGB by V'/V keeps hue and saturation; black pixels (V = 0) become grey V'.
    scaled = x * (v_new / v.clamp_min(1e-12))
    return torch.where(v > 0, scaled, v_new.expand_as(x))


def _jpeg(x: torch.Tensor, quality: float, gen: torch.Generator | None) -> torch.Tensor:
    from PIL import Image

    images = (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    out = []
    for img in images:
        pil = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)
        buffer = io.BytesIO()
        pil.save(buffer, format="JPEG", quality=int(quality))
        decoded = np.asarray(Image.open(buffer).convert(pil.mode))
        out.append(decoded.reshape(img.shape))
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).to(x.device, x.dtype) / 255.0


def _pixelate(x: torch.Tensor, c: float, gen: torch.Generator | None) -> torch.Tensor:
    h, w = x.shape[-2:]
    small = F.interpolate(x, size=(max(1, int(h * c)), max(1, int(w * c))), mode="area")
    return F.interpolate(small, size=(h, w), mode="nearest")


CORRUPTIONS: dict[str, Corruption] = {
    "gaussian_noise": _gaussian_noise,
    "shot_noise": _shot_noise,
    "gaussian_blur": _gaussian_blur,
    "contrast": _contrast,
    "brightness": _brightness,
    "jpeg_compression": _jpeg,
    "pixelate": _pixelate,
}


def corrupt(x: torch.Tensor, name: str, severity: int,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply generated corruption ``name`` at ``severity`` (1–5) to images in [0, 1].

    Returns float images in [0, 1], quantised to multiples of 1/255.
    """
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r} (choose from {', '.join(CORRUPTIONS)})")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be 1..5, got {severity}")
    out = CORRUPTIONS[name](x.float(), PARAMS[name][severity - 1], generator)
    return (out.clamp(0.0, 1.0) * 255).round() / 255.0


def corruption_files(directory: str | Path) -> list[str]:
    """Corruption names available as ``<name>.npy`` in ``directory`` (sorted)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"corruptions directory {directory} does not exist")
    if not (directory / "labels.npy").is_file():
        raise DataError(f"corruptions directory {directory} has no labels.npy "
                        "(expected the CIFAR-10-C / CIFAR-100-C layout)")
    names = sorted(p.stem for p in directory.glob("*.npy") if p.stem != "labels")
    if not names:
        raise DataError(f"corruptions directory {directory} has no <corruption>.npy files")
    return names


def load_corruption_file(directory: str | Path, name: str, severity: int,
                         n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` images (uint8, N×C×H×W) and labels of ``name`` at ``severity``."""
    directory = Path(directory)
    path = directory / f"{name}.npy"
    try:
        images = np.load(path, mmap_mode="r", allow_pickle=False)
        labels = np.load(directory / "labels.npy", mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    if images.ndim != 4 or images.dtype != np.uint8 or len(images) % 5:
        raise DataError(f"{path}: expected uint8 images (5*M, H, W, C), got {images.dtype} "
                        f"{images.shape}")
    if len(labels) != len(images):
        raise DataError(f"{path}: {len(images)} images but labels.npy has {len(labels)}")
    block = len(images) // 5
    count = block if n is None else min(n, block)
    start = (severity - 1) * block
    # np.array copies: a slice of the read-only memory map must not back a torch tensor
    x = torch.from_numpy(np.array(images[start:start + count])).permute(0, 3, 1, 2)
    y = torch.from_numpy(np.asarray(labels[start:start + count]).astype(np.int64))
    return x.contiguous(), y
