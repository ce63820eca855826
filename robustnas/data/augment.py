"""Batched, on-device augmentation: random crop with zero padding, horizontal flip, cutout.

Equivalent per sample to torchvision's ``RandomCrop(size, padding=p)`` (zero fill, offsets
uniform in 0..2p), ``RandomHorizontalFlip()`` and DARTS' ``Cutout(length)``, applied in that
order, but on a whole batch at once with index arithmetic (no Python loop over samples, no
DataLoader workers). All randomness comes from the ``torch.Generator`` passed in, so a batch
and a generator state fix the result. Random parameters are drawn on the generator's device
and applied on the data's device; drawing them separately (:meth:`Augment.sample`) lets a
sharded loader draw them for the global batch and apply only its own slice.

Cutout follows DARTS exactly in geometry: centre (cy, cx) uniform over the image, zeroed rows
``clip(cy - L//2, 0, H) .. clip(cy + L//2, 0, H)`` (so an odd ``L`` cuts ``L - 1`` rows), same for
columns. Deviation: DARTS cuts after normalisation, so its hole has the dataset mean colour;
here images are still in [0, 1] and the hole is black by default. Pass
``cutout_fill=dataset.mean`` to reproduce DARTS' hole colour.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

from robustnas.data.base import ImageDataset
from robustnas.errors import UsageError


@dataclass
class AugmentParams:
    """Per-sample random choices for one batch; ``None`` where that transform is off."""

    crop_y: torch.Tensor | None = None
    crop_x: torch.Tensor | None = None
    flip: torch.Tensor | None = None
    cut_y: torch.Tensor | None = None
    cut_x: torch.Tensor | None = None

    def _map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> AugmentParams:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return AugmentParams(**{k: None if v is None else fn(v) for k, v in values.items()})

    def slice(self, start: int, stop: int) -> AugmentParams:
        """The parameters of samples ``start:stop``."""
        return self._map(lambda t: t[start:stop])

    def to(self, device: torch.device) -> AugmentParams:
        """The parameters on ``device``."""
        return self._map(lambda t: t.to(device, non_blocking=True))


def crop(x: torch.Tensor, padding: int, offset_y: torch.Tensor,
         offset_x: torch.Tensor) -> torch.Tensor:
    """Zero-pad ``x`` (N, C, H, W) by ``padding`` and cut an H x W window at per-sample
    offsets ``(offset_y[i], offset_x[i])`` in the padded image (each in 0..2*padding)."""
    n, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    width = w + 2 * padding
    rows = offset_y.view(n, 1, 1) + torch.arange(h, device=x.device).view(1, h, 1)
    cols = offset_x.view(n, 1, 1) + torch.arange(w, device=x.device).view(1, 1, w)
    flat = (rows * width + cols).view(n, 1, h * w).expand(n, c, h * w)
    return padded.reshape(n, c, -1).gather(2, flat).view(n, c, h, w)


def hflip(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mirror the samples of ``x`` (N, C, H, W) where ``mask`` (N,) is true."""
    return torch.where(mask.view(-1, 1, 1, 1), x.flip(3), x)


def cutout(x: torch.Tensor, size: int, centre_y: torch.Tensor, centre_x: torch.Tensor,
           fill: Sequence[float] | None = None) -> torch.Tensor:
    """Set a ``size`` square (DARTS geometry, clipped at borders) around each sample's centre
    to ``fill`` (per channel; zero when ``None``)."""
    n, c, h, w = x.shape
    half = size // 2
    rows = torch.arange(h, device=x.device).view(1, h)
    cols = torch.arange(w, device=x.device).view(1, w)
    in_rows = (rows >= (centre_y - half).clamp(0, h).view(n, 1)) \
        & (rows < (centre_y + half).clamp(0, h).view(n, 1))
    in_cols = (cols >= (centre_x - half).clamp(0, w).view(n, 1)) \
        & (cols < (centre_x + half).clamp(0, w).view(n, 1))
    hole = (in_rows.view(n, 1, h, 1) & in_cols.view(n, 1, 1, w))
    if fill is None:
        return x.masked_fill(hole, 0)
    value = torch.as_tensor(fill, dtype=x.dtype, device=x.device).view(1, c, 1, 1)
    return torch.where(hole, value, x)


class Augment:
    """Random crop (zero padding ``crop_padding``; 0 = off), horizontal flip with probability
    1/2 (``flip``) and cutout of side ``cutout`` (0 = off), on a batch in [0, 1].

    ``augment(x, generator)`` returns a new tensor; ``generator`` may live on any device
    (use one on the data's device to avoid host-device copies).
    """

    def __init__(self, crop_padding: int = 4, flip: bool = True, cutout: int = 0,
                 cutout_fill: Sequence[float] | None = None) -> None:
        for key, value in (("crop_padding", crop_padding), ("cutout", cutout)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise UsageError(f"augmentation {key} must be an integer >= 0, got {value!r}")
        self.crop_padding = crop_padding
        self.flip = bool(flip)
        self.cutout = cutout
        self.cutout_fill = None if cutout_fill is None else tuple(float(v) for v in cutout_fill)

    def sample(self, n: int, height: int, width: int,
               generator: torch.Generator) -> AugmentParams:
        """Draw the random choices for ``n`` images of ``height`` x ``width`` (in a fixed
        order: crop rows, crop columns, flips, cutout rows, cutout columns)."""
        device = generator.device

        def randint(high: int) -> torch.Tensor:
            return torch.randint(0, high, (n,), generator=generator, device=device)

        params = AugmentParams()
        if self.crop_padding:
            params.crop_y = randint(2 * self.crop_padding + 1)
            params.crop_x = randint(2 * self.crop_padding + 1)
        if self.flip:
            params.flip = randint(2).bool()
        if self.cutout:
            params.cut_y = randint(height)
            params.cut_x = randint(width)
        return params

    def apply(self, x: torch.Tensor, params: AugmentParams) -> torch.Tensor:
        """Apply drawn choices ``params`` (one entry per sample of ``x``)."""
        params = params.to(x.device)
        if params.crop_y is not None and params.crop_x is not None:
            x = crop(x, self.crop_padding, params.crop_y, params.crop_x)
        if params.flip is not None:
            x = hflip(x, params.flip)
        if params.cut_y is not None and params.cut_x is not None:
            x = cutout(x, self.cutout, params.cut_y, params.cut_x, self.cutout_fill)
        return x

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.apply(x, self.sample(x.shape[0], x.shape[2], x.shape[3], generator))

    def __repr__(self) -> str:
        return (f"Augment(crop_padding={self.crop_padding}, flip={self.flip}, "
                f"cutout={self.cutout}, cutout_fill={self.cutout_fill})")


#: The image side (CIFAR-10's) that DARTS' augmentation sizes are given for.
DARTS_IMAGE_SIZE = 32
#: DARTS' crop padding on 32x32 images.
DARTS_CROP_PADDING = 4


def scaled_to_image(value: int, image_size: int, minimum: int = 0) -> int:
    """A DARTS size in pixels of 32x32 images (``value``) for images of ``image_size``
    pixels: in proportion to the side, rounded down, and at least ``minimum``; 0 (off)
    stays 0. Exactly ``value`` at 32 px; DARTS' cutout 16 becomes half the side (4 on
    the 8x8 digits, 14 on 28x28), its crop padding 4 an eighth (1 on 8x8, 3 on 28x28).
    Rounding down keeps a cutout smaller than the image however small the image."""
    if value == 0:
        return 0
    return max(minimum, value * image_size // DARTS_IMAGE_SIZE)


def default_crop_padding(image_size: int) -> int:
    """DARTS' crop padding (4 on 32x32 images) scaled to ``image_size``, at least 1."""
    return scaled_to_image(DARTS_CROP_PADDING, image_size, minimum=1)


def default_augment(dataset: ImageDataset, cutout: int = 0, darts_cutout_fill: bool = False
                    ) -> Augment:
    """The usual training augmentation for ``dataset``: padding of 1/8 of the image side
    (:func:`default_crop_padding`: 4 px at 32 px), flips where they keep the label
    (``dataset.hflip``), optional cutout (with DARTS' hole colour, the dataset mean, if
    ``darts_cutout_fill``)."""
    fill = dataset.mean if darts_cutout_fill else None
    return Augment(crop_padding=default_crop_padding(dataset.image_size), flip=dataset.hflip,
                   cutout=cutout, cutout_fill=fill)
