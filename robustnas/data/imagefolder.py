"""Your own images in the ImageFolder layout: one sub-folder of PNG/JPEG files per class.

``root`` (``--data-root``) is either the class folder itself::

    root/cat/001.png, root/cat/002.jpg, root/dog/…           (a test split is held out)

or a folder with ``train/`` and ``test/`` class folders of the same names (then these are the
splits and ``test_fraction`` is not used)::

    root/train/cat/…, root/train/dog/…, root/test/cat/…, root/test/dog/…

Classes are the sub-folder names in sorted order (label 0 = first name). Files ending in
``.png``, ``.jpg`` or ``.jpeg`` (any case) are read with Pillow; other files and hidden
files are ignored. Images are decoded once into ``uint8`` tensors held in memory (and on
the device by the loaders), like the built-in datasets.

Options (``dataset_options`` in a config):

- ``test_fraction`` (0.2): fraction of each class held out as the test split
  (:mod:`robustnas.data.custom`); ``split_seed`` (0) seeds that split.
- ``channels`` (auto): 1 (grey) or 3 (RGB). Auto: 1 when every image is greyscale, else 3.
  Other modes (palette, RGBA, CMYK…) are converted with Pillow; transparency is dropped.
- ``resize`` (off): an integer N resizes every image to N×N (bilinear, Pillow), or
  ``[H, W]``. Without it all images must have the same size, or loading stops naming two
  files that differ.
- ``hflip`` (false): whether a horizontal flip keeps the label (enables flip augmentation).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from robustnas.data.base import DATASETS, ImageDataset, as_int_option
from robustnas.data.custom import assemble, bool_option, fraction_option
from robustnas.errors import DataError, UsageError

EXTENSIONS = (".png", ".jpg", ".jpeg")
_GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".")
                  and p.suffix.lower() in EXTENSIONS)


def _class_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _resize_option(value: object) -> tuple[int, int] | None:
    if value is None or value is False:
        return None
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != 2:
            raise UsageError("dataset 'imagefolder': option resize must be N or [H, W]")
        return (as_int_option("imagefolder", "resize", value[0], 1),
                as_int_option("imagefolder", "resize", value[1], 1))
    size = as_int_option("imagefolder", "resize", value, 1)
    return size, size


def _header(path: Path) -> tuple[str, tuple[int, int]]:
    """(mode, (width, height)) of an image file, read from its header only."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return img.mode, img.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"{path}: not a readable PNG/JPEG image ({exc})") from None


def _decode(path: Path, channels: int, size: tuple[int, int] | None) -> np.ndarray:
    """The image as a uint8 (H, W, channels) array."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("I", "I;16", "F"):  # 16-bit/float grey: into 0..255 first
                arr = np.asarray(img, dtype=np.float64)
                top = 65535.0 if img.mode.startswith("I") and arr.max() > 255 else 255.0
                img = Image.fromarray(np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8))
            img = img.convert("L" if channels == 1 else "RGB")
            if size is not None and img.size != (size[1], size[0]):
                img = img.resize((size[1], size[0]), Image.BILINEAR)
            arr = np.array(img, dtype=np.uint8)  # a writable copy
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"{path}: not a readable PNG/JPEG image ({exc})") from None
    return arr[:, :, None] if arr.ndim == 2 else arr


def _read_split(folder: Path, classes: list[str], channels: int | None,
                size: tuple[int, int] | None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Decode every image under ``folder/<class>``; returns (x, y, channels)."""
    files: list[tuple[Path, int]] = []
    for label, name in enumerate(classes):
        sub = folder / name
        found = _image_files(sub) if sub.is_dir() else []
        if not found:
            raise DataError(f"{sub}: class {name!r} has no PNG/JPEG images")
        files += [(f, label) for f in found]
    headers = [_header(f) for f, _ in files]
    if channels is None:
        channels = 1 if all(mode in _GREY_MODES for mode, _ in headers) else 3
    if size is None:
        (w0, h0), first = headers[0][1], files[0][0]
        for (_, (w, h)), (path, _) in zip(headers, files):
            if (w, h) != (w0, h0):
                raise DataError(f"images differ in size: {first} is {w0}x{h0}, {path} is "
                                f"{w}x{h} (set the dataset option resize, e.g. resize: 32)")
        size = (h0, w0)
    x = torch.empty((len(files), channels, *size), dtype=torch.uint8)
    for i, (path, _) in enumerate(files):
        x[i] = torch.from_numpy(_decode(path, channels, size)).permute(2, 0, 1)
    y = torch.tensor([label for _, label in files], dtype=torch.long)
    return x, y, channels


@DATASETS.register("imagefolder")
def load_imagefolder(root: Path, download: bool, *, test_fraction: float = 0.2,
                     split_seed: int = 0, channels: int | None = None,
                     resize: int | Sequence[int] | None = None,
                     hflip: bool = False) -> ImageDataset:
    """Images from class sub-folders under ``root`` (see the module docstring)."""
    del download  # local files only
    test_fraction = fraction_option("imagefolder", "test_fraction", test_fraction)
    split_seed = as_int_option("imagefolder", "split_seed", split_seed, 0)
    if channels is not None:
        channels = as_int_option("imagefolder", "channels", channels, 1)
        if channels not in (1, 3):
            raise UsageError(f"dataset 'imagefolder': option channels must be 1 or 3, "
                             f"got {channels}")
    size = _resize_option(resize)
    hflip = bool_option("imagefolder", "hflip", hflip)
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder (set --data-root to the folder of class "
                        "sub-folders)")
    train_dir, test_dir = root / "train", root / "test"
    given_split = train_dir.is_dir() and test_dir.is_dir()
    source = train_dir if given_split else root
    classes = [p.name for p in _class_folders(source)]
    if not classes:
        raise DataError(f"{source}: no class sub-folders found (expected one folder of "
                        "images per class)")
    x, y, channels = _read_split(source, classes, channels, size)
    test = None
    if given_split:
        extra = sorted({p.name for p in _class_folders(test_dir)} - set(classes))
        if extra:
            raise DataError(f"{test_dir}: classes {', '.join(extra)} are not in {train_dir}")
        test_classes = [c for c in classes if (test_dir / c).is_dir()]
        if not test_classes:
            raise DataError(f"{test_dir}: no class sub-folders found")
        tx, ty_local, _ = _read_split(test_dir, test_classes, channels, size)
        ty = torch.tensor([classes.index(test_classes[i]) for i in ty_local.tolist()])
        if size is None and tx.shape[2:] != x.shape[2:]:
            raise DataError(f"{test_dir}: test images are {tx.shape[3]}x{tx.shape[2]}, "
                            f"training images {x.shape[3]}x{x.shape[2]} (set the dataset "
                            "option resize)")
        test = (tx, ty)
    return assemble("imagefolder", root, x, y, len(classes), test, test_fraction,
                    split_seed, hflip)
