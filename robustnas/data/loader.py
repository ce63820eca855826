"""A data loader that keeps the whole dataset on the training device.

Images stay ``uint8`` on the device (a quarter of float32 memory); each batch is gathered by
index, converted to float32 in [0, 1] and augmented there, so there are no worker processes
and no host-device copies per batch.

Determinism and resuming: the order of epoch ``e`` is a permutation drawn on the CPU from a
seed derived from ``(seed, e)`` (hence identical on every device), and the augmentation of
batch ``b`` uses a generator on the data's device seeded from ``(seed, e, b)``. A batch is
therefore a pure function of ``(seed, epoch, batch index)``: ``loader.epoch(e, start=k)``
yields exactly the batches ``k, k+1, ...`` of a full pass over epoch ``e``. (Augmentations
drawn on CUDA differ from those drawn on CPU, as the generators differ; each is
reproducible.) Iterating the loader directly (``for x, y in loader``) runs the epoch given
by an internal counter that starts at 0 and advances by one per ``iter()``; use
:meth:`DeviceLoader.set_epoch` or, better, :meth:`DeviceLoader.epoch` to be explicit.

Sharding (DDP): ``batch_size`` is the *global* batch size and must be divisible by
``num_shards``. Shard ``k`` receives the ``k``-th contiguous slice of every global batch, so
the shards together see exactly the batches of a single process, with the same augmentation
(the random choices are drawn for the whole global batch and then sliced). A final partial
batch (``drop_last=False``) is split as evenly as possible, so a shard may get an empty
final slice when fewer images remain than there are shards; every shard still yields the same
number of batches.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any, NamedTuple

import torch

from robustnas.data.augment import Augment
from robustnas.data.base import ImageDataset
from robustnas.errors import UsageError

Batch = tuple[torch.Tensor, torch.Tensor]

_ORDER_STREAM = 0
_AUGMENT_STREAM = 1


def derive_seed(*parts: int) -> int:
    """A 63-bit seed that is a stable hash of the integers ``parts``."""
    text = ",".join(str(int(p)) for p in parts).encode()
    digest = hashlib.blake2b(text, digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def _positive_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"{key} must be a positive integer, got {value!r}")
    return value


class DeviceLoader:
    """Batches ``(x float32 in [0, 1], y int64)`` from ``uint8`` images kept on ``device``
    (``dtype``: the batches' floating type, float32 unless asked).

    ``x``: (N, C, H, W) ``uint8`` (or floating point already in [0, 1]); ``y``: (N,) labels.
    ``augment``: an :class:`Augment` or any ``callable(x, generator) -> x``; ``None`` = off.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, *,
                 shuffle: bool = True, augment: Any = None, seed: int = 0,
                 drop_last: bool = False, device: str | torch.device = "cpu",
                 num_shards: int = 1, shard_index: int = 0,
                 dtype: torch.dtype = torch.float32) -> None:
        self.dtype = dtype  # of the batches (float64: a search's `precision: float64`)
        self.batch_size = _positive_int("batch_size", batch_size)
        self.num_shards = _positive_int("num_shards", num_shards)
        if not 0 <= shard_index < num_shards:
            raise UsageError(f"shard_index must be in 0..{num_shards - 1}, got {shard_index}")
        if batch_size % num_shards:
            raise UsageError(f"batch_size {batch_size} is the global batch and must be "
                             f"divisible by num_shards {num_shards}")
        x, y = torch.as_tensor(x), torch.as_tensor(y)
        if x.dim() != 4 or y.dim() != 1 or len(x) != len(y) or len(x) == 0:
            raise UsageError(f"DeviceLoader needs images (N, C, H, W) and labels (N,) with "
                             f"N > 0, got {tuple(x.shape)} and {tuple(y.shape)}")
        if x.dtype != torch.uint8 and not x.is_floating_point():
            raise UsageError(f"DeviceLoader images must be uint8 or floating, got {x.dtype}")
        self.device = torch.device(device)
        self.x = x.to(self.device)
        self.y = y.to(self.device, torch.int64)
        self.shuffle = bool(shuffle)
        self.augment = augment
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.shard_index = int(shard_index)
        self._next_epoch = 0
        if len(self) == 0:
            raise UsageError(f"batch_size {batch_size} with drop_last leaves no batch of "
                             f"{len(x)} images")

    @property
    def num_samples(self) -> int:
        """Images in the underlying set (all shards together)."""
        return len(self.y)

    def __len__(self) -> int:
        full, rest = divmod(self.num_samples, self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1

    def order(self, epoch: int) -> torch.Tensor:
        """Indices of all images in the order of ``epoch`` (on the CPU)."""
        if not self.shuffle:
            return torch.arange(self.num_samples)
        generator = torch.Generator().manual_seed(derive_seed(_ORDER_STREAM, self.seed, epoch))
        return torch.randperm(self.num_samples, generator=generator)

    def _shard_bounds(self, size: int) -> tuple[int, int]:
        # Same as torch.tensor_split: the first `extra` shards get one more image.
        base, extra = divmod(size, self.num_shards)
        k = self.shard_index
        start = k * base + min(k, extra)
        return start, start + base + (1 if k < extra else 0)

    def _to_float(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            return x.to(self.dtype).div_(255.0)
        return x.to(self.dtype)

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        """Yield the batches ``start, start+1, ...`` of ``epoch`` (this shard's slices)."""
        if isinstance(start, bool) or not isinstance(start, int) or not 0 <= start <= len(self):
            raise UsageError(f"start batch must be in 0..{len(self)}, got {start!r}")
        if int(epoch) < 0:
            raise UsageError(f"epoch must be >= 0, got {epoch}")
        return self._batches(int(epoch), start)

    def _batches(self, epoch: int, start: int) -> Iterator[Batch]:
        order = self.order(epoch).to(self.device)
        generator = torch.Generator(device=self.device) if self.augment is not None else None
        height, width = self.x.shape[2], self.x.shape[3]
        for batch in range(start, len(self)):
            indices = order[batch * self.batch_size:(batch + 1) * self.batch_size]
            lo, hi = self._shard_bounds(len(indices))
            mine = indices[lo:hi]
            x = self._to_float(self.x[mine])
            if generator is not None:
                generator.manual_seed(derive_seed(_AUGMENT_STREAM, self.seed, epoch, batch))
                if isinstance(self.augment, Augment):
                    params = self.augment.sample(len(indices), height, width, generator)
                    x = self.augment.apply(x, params.slice(lo, hi))
                else:  # an arbitrary callable: augment the global batch, keep our slice
                    x = self.augment(self._to_float(self.x[indices]), generator)[lo:hi]
            yield x, self.y[mine]

    def set_epoch(self, epoch: int) -> None:
        """Make the next ``iter(loader)`` run ``epoch``."""
        self._next_epoch = int(epoch)

    def __iter__(self) -> Iterator[Batch]:
        epoch = self._next_epoch
        self._next_epoch += 1
        return self.epoch(epoch)

    def __repr__(self) -> str:
        return (f"DeviceLoader(n={self.num_samples}, batch_size={self.batch_size}, "
                f"batches={len(self)}, shuffle={self.shuffle}, augment={self.augment!r}, "
                f"device={self.device}, shard={self.shard_index}/{self.num_shards})")


class Loaders(NamedTuple):
    """A training loader (shuffled, augmented) and a test loader (in order, plain)."""

    train: DeviceLoader
    test: DeviceLoader


def build_loaders(dataset: ImageDataset, batch_size: int, *, augment: Any = None,
                  seed: int = 0, device: str | torch.device = "cpu",
                  eval_batch_size: int | None = None, drop_last: bool = True,
                  num_shards: int = 1, shard_index: int = 0) -> Loaders:
    """Loaders over ``dataset``'s train set (shuffled, ``augment``, ``drop_last``) and test
    set (in order, no augmentation, all images; ``eval_batch_size`` defaults to
    ``batch_size``)."""
    train = DeviceLoader(dataset.train_x, dataset.train_y, batch_size, shuffle=True,
                         augment=augment, seed=seed, drop_last=drop_last, device=device,
                         num_shards=num_shards, shard_index=shard_index)
    test = DeviceLoader(dataset.test_x, dataset.test_y, eval_batch_size or batch_size,
                        shuffle=False, augment=None, seed=seed, drop_last=False, device=device,
                        num_shards=num_shards, shard_index=shard_index)
    return Loaders(train, test)
