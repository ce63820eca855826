"""Datasets (on-disk formats, errors), splits, batched augmentation and the device loader."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from robustnas.data import (
    DATASETS,
    Augment,
    DeviceLoader,
    build_loaders,
    default_augment,
    load_dataset,
    search_split,
    split_indices,
)
from robustnas.data.augment import crop, cutout, hflip
from robustnas.data.cifar import CIFAR10_MEAN, CIFAR100_STD
from robustnas.data.svhn import SVHN_MEAN
from robustnas.errors import DataError, UsageError

# ---------------------------------------------------------------- on-disk fixtures


def _write_cifar_batch(path: Path, data: np.ndarray, labels: list[int], label_key: bytes,
                       protocol: int = 2, extra: dict | None = None) -> None:
    content = {b"batch_label": b"test", label_key: labels, b"data": data, **(extra or {})}
    path.write_bytes(pickle.dumps(content, protocol=protocol))


@pytest.fixture
def cifar10_root(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """Five 2-image training batches and a 3-image test batch in CIFAR-10's format."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    data = rng.integers(0, 256, (13, 3072), dtype=np.uint8)
    labels = np.array([0, 9, 3, 3, 1, 2, 5, 4, 8, 7, 6, 0, 9])
    for i in range(5):
        _write_cifar_batch(folder / f"data_batch_{i + 1}", data[2 * i:2 * i + 2],
                           labels[2 * i:2 * i + 2].tolist(), b"labels", protocol=2 + i % 4)
    _write_cifar_batch(folder / "test_batch", data[10:], labels[10:].tolist(), b"labels")
    return tmp_path, data, labels


def _write_svhn(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    scipy.io.savemat(str(path), {"X": images, "y": labels.reshape(-1, 1).astype(np.uint8)})


@pytest.fixture
def svhn_root(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (32, 32, 3, 7), dtype=np.uint8)
    labels = np.array([10, 1, 2, 9, 10, 5, 3])
    _write_svhn(tmp_path / "train_32x32.mat", images[..., :4], labels[:4])
    _write_svhn(tmp_path / "test_32x32.mat", images[..., 4:], labels[4:])
    return tmp_path, images, labels


# ---------------------------------------------------------------- CIFAR / SVHN readers


def test_cifar10_reads_pickled_batches_exactly(cifar10_root):
    root, data, labels = cifar10_root
    ds = load_dataset("cifar10", root=root)
    assert ds.train_x.shape == (10, 3, 32, 32) and ds.test_x.shape == (3, 3, 32, 32)
    assert ds.train_x.dtype == torch.uint8 and ds.train_y.dtype == torch.int64
    # Channel-major planes: byte 1024 * c + 32 * h + w of a row is pixel (c, h, w).
    for n, c, h, w in [(0, 0, 0, 0), (3, 1, 5, 7), (9, 2, 31, 30)]:
        assert int(ds.train_x[n, c, h, w]) == data[n, 1024 * c + 32 * h + w]
    assert int(ds.test_x[2, 2, 31, 31]) == data[12, 3071]
    assert ds.train_y.tolist() == labels[:10].tolist()
    assert ds.test_y.tolist() == labels[10:].tolist()
    assert (ds.num_classes, ds.in_channels, ds.image_size) == (10, 3, 32)
    assert ds.mean == pytest.approx(CIFAR10_MEAN) and ds.hflip
    # root may also be the batch folder itself
    again = load_dataset("cifar10", root=root / "cifar-10-batches-py")
    assert torch.equal(again.train_x, ds.train_x)


def test_cifar100_uses_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    data = np.arange(4 * 3072, dtype=np.int64).reshape(4, 3072).astype(np.uint8)
    _write_cifar_batch(folder / "train", data[:3], [99, 0, 42], b"fine_labels",
                       extra={b"coarse_labels": [19, 0, 5]})
    _write_cifar_batch(folder / "test", data[3:], [7], b"fine_labels",
                       extra={b"coarse_labels": [1]})
    ds = load_dataset("cifar100", root=tmp_path)
    assert ds.num_classes == 100 and ds.train_y.tolist() == [99, 0, 42]
    assert ds.test_y.tolist() == [7]
    assert torch.equal(ds.train_x.reshape(3, -1), torch.from_numpy(data[:3]))
    assert ds.std == pytest.approx(CIFAR100_STD)


def test_svhn_reads_mat_files_and_maps_label_10_to_0(svhn_root):
    root, images, labels = svhn_root
    ds = load_dataset("svhn", root=root)
    assert ds.train_x.shape == (4, 3, 32, 32) and ds.test_x.shape == (3, 3, 32, 32)
    for n, c, h, w in [(0, 0, 0, 0), (2, 1, 4, 9), (3, 2, 31, 0)]:
        assert int(ds.train_x[n, c, h, w]) == images[h, w, c, n]
    assert int(ds.test_x[1, 2, 7, 3]) == images[7, 3, 2, 5]
    assert ds.train_y.tolist() == [0, 1, 2, 9]
    assert ds.test_y.tolist() == [0, 5, 3]
    assert ds.mean == pytest.approx(SVHN_MEAN) and not ds.hflip


def test_missing_datasets_name_the_expected_place(tmp_path):
    with pytest.raises(DataError, match="CIFAR-10 not found under") as info:
        load_dataset("cifar10", root=tmp_path)
    assert str(tmp_path) in str(info.value) and "cifar-10-batches-py" in str(info.value)
    with pytest.raises(DataError, match="cifar-100-python"):
        load_dataset("cifar100", root=tmp_path)
    with pytest.raises(DataError, match="train_32x32.mat"):
        load_dataset("svhn", root=tmp_path)


def test_incomplete_cifar_names_the_missing_file(cifar10_root):
    root, _, _ = cifar10_root
    (root / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(DataError, match="incomplete.*data_batch_4 is missing"):
        load_dataset("cifar10", root=root)


def test_truncated_or_malformed_files_raise_data_error(cifar10_root, svhn_root):
    root, _, _ = cifar10_root
    batch = root / "cifar-10-batches-py" / "data_batch_2"
    batch.write_bytes(batch.read_bytes()[:500])
    with pytest.raises(DataError, match="data_batch_2"):
        load_dataset("cifar10", root=root)

    _write_cifar_batch(batch, np.zeros((2, 3072), np.uint8), [0, 10], b"labels")
    with pytest.raises(DataError, match=r"data_batch_2: labels outside 0\.\.9"):
        load_dataset("cifar10", root=root)

    _write_cifar_batch(batch, np.zeros((2, 100), np.uint8), [0, 1], b"labels")
    with pytest.raises(DataError, match="shape"):
        load_dataset("cifar10", root=root)

    svhn, _, _ = svhn_root
    mat = svhn / "test_32x32.mat"
    mat.write_bytes(mat.read_bytes()[:300])
    with pytest.raises(DataError, match="test_32x32.mat"):
        load_dataset("svhn", root=svhn)
    _write_svhn(mat, np.zeros((32, 32, 1, 2), np.uint8), np.array([1, 2]))
    with pytest.raises(DataError, match="shape"):
        load_dataset("svhn", root=svhn)


class _Bomb:
    def __reduce__(self):
        return (Path.touch, (Path(_Bomb.target),))


def test_cifar_reader_refuses_non_numpy_globals(cifar10_root, tmp_path):
    root, _, _ = cifar10_root
    _Bomb.target = str(tmp_path / "pwned")
    content = {b"data": np.zeros((1, 3072), np.uint8), b"labels": [0], b"x": _Bomb()}
    (root / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps(content))
    with pytest.raises(DataError, match="refusing to load global"):
        load_dataset("cifar10", root=root)
    assert not (tmp_path / "pwned").exists()


def test_download_without_torchvision_says_what_to_place(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # makes the import fail
    monkeypatch.setitem(sys.modules, "torchvision.datasets", None)
    with pytest.raises(DataError, match="torchvision is not usable.*cifar-10-batches-py"):
        load_dataset("cifar10", root=tmp_path, download=True)
    with pytest.raises(DataError, match="torchvision is not usable.*train_32x32.mat"):
        load_dataset("svhn", root=tmp_path, download=True)


def test_unknown_names_and_options_are_usage_errors():
    with pytest.raises(UsageError, match="cifar10.*digits.*synthetic"):
        load_dataset("imagenet")
    with pytest.raises(UsageError, match="unknown option.*colour.*accepted: num_classes"):
        load_dataset("synthetic", colour=3)
    with pytest.raises(UsageError, match="no_such"):
        load_dataset("digits", no_such=1)
    with pytest.raises(UsageError, match="n_train"):
        load_dataset("synthetic", n_train=0)
    assert set(DATASETS.names()) == {"cifar10", "cifar100", "svhn", "digits", "synthetic",
                                     "imagefolder", "npz"}


# ---------------------------------------------------------------- bundled datasets


def test_digits_load_offline():
    ds = load_dataset("digits", root="/nonexistent")
    assert len(ds.train_y) + len(ds.test_y) == 1797
    assert (len(ds.train_y), len(ds.test_y)) == (1437, 360)
    assert ds.train_x.shape[1:] == (1, 8, 8) and ds.train_x.dtype == torch.uint8
    assert sorted(set(ds.train_y.tolist())) == list(range(10))
    assert sorted(set(ds.test_y.tolist())) == list(range(10))
    assert int(ds.train_x.max()) == 255 and not ds.hflip
    pixels = ds.train_x.double() / 255
    assert ds.mean[0] == pytest.approx(float(pixels.mean()))
    assert ds.std[0] == pytest.approx(float(pixels.std(unbiased=False)))


def test_bundled_digits_match_scikit_learn(tmp_path):
    datasets = pytest.importorskip("sklearn.datasets")
    from robustnas.data.digits import build_digits_archive

    build_digits_archive(tmp_path / "digits.npz")
    rebuilt = np.load(tmp_path / "digits.npz")
    ds = load_dataset("digits")
    assert np.array_equal(rebuilt["train_x"], ds.train_x.numpy())
    assert np.array_equal(rebuilt["test_y"], ds.test_y.numpy())
    raw = datasets.load_digits()
    all_x = np.concatenate([ds.train_x.numpy(), ds.test_x.numpy()]).reshape(-1, 64)
    expected = np.rint(raw.data * 255 / 16).astype(np.uint8)
    assert sorted(map(bytes, all_x)) == sorted(map(bytes, expected))


def test_synthetic_is_deterministic_configurable_and_learnable():
    a = load_dataset("synthetic", num_classes=4, image_size=6, channels=2, n_train=64,
                     n_test=32)
    b = load_dataset("synthetic", num_classes=4, image_size=6, channels=2, n_train=64,
                     n_test=32)
    c = load_dataset("synthetic", num_classes=4, image_size=6, channels=2, n_train=64,
                     n_test=32, seed=1)
    assert a.train_x.shape == (64, 2, 6, 6) and a.test_x.shape == (32, 2, 6, 6)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    assert not torch.equal(a.train_x, c.train_x)
    assert torch.bincount(a.train_y).tolist() == [16] * 4
    # nearest class centroid separates the classes: the data carry a learnable signal
    x, t = a.train_x.double().flatten(1), a.test_x.double().flatten(1)
    centroids = torch.stack([x[a.train_y == k].mean(0) for k in range(4)])
    accuracy = (torch.cdist(t, centroids).argmin(1) == a.test_y).double().mean()
    assert accuracy > 0.9


# ---------------------------------------------------------------- splits


def test_split_indices_seeded_disjoint_covering():
    first, second = split_indices(101, portion=0.3, seed=5)
    assert (len(first), len(second)) == (30, 71)
    assert sorted(torch.cat([first, second]).tolist()) == list(range(101))
    again = split_indices(101, portion=0.3, seed=5)
    assert torch.equal(first, again[0]) and torch.equal(second, again[1])
    assert not torch.equal(first, split_indices(101, portion=0.3, seed=6)[0])
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(UsageError):
            split_indices(10, portion=bad)


def test_search_split_uses_training_rows():
    ds = load_dataset("synthetic", n_train=40, n_test=8)
    tx, ty, vx, vy = search_split(ds, portion=0.5, seed=3)
    first, second = split_indices(40, 0.5, 3)
    assert torch.equal(tx, ds.train_x[first]) and torch.equal(vy, ds.train_y[second])
    assert len(ty) == len(vx) == 20


# ---------------------------------------------------------------- augmentation


def _slow_crop(x: torch.Tensor, padding: int, oy: torch.Tensor, ox: torch.Tensor):
    n, c, h, w = x.shape
    padded = torch.zeros(n, c, h + 2 * padding, w + 2 * padding, dtype=x.dtype)
    padded[:, :, padding:padding + h, padding:padding + w] = x
    return torch.stack([padded[i, :, oy[i]:oy[i] + h, ox[i]:ox[i] + w] for i in range(n)])


def test_crop_matches_per_sample_reference():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(9, 2, 6, 7, generator=gen)
    params = Augment(crop_padding=3, flip=False).sample(9, 6, 7, gen)
    assert int(params.crop_y.min()) >= 0 and int(params.crop_y.max()) <= 6
    expected = _slow_crop(x, 3, params.crop_y, params.crop_x)
    assert torch.equal(crop(x, 3, params.crop_y, params.crop_x), expected)
    # a hand-checked case: offset (0, 0) shifts the image down-right by the padding
    img = torch.arange(1.0, 10.0).view(1, 1, 3, 3)
    shifted = crop(img, 1, torch.tensor([0]), torch.tensor([0]))
    assert shifted[0, 0].tolist() == [[0, 0, 0], [0, 1, 2], [0, 4, 5]]
    centred = crop(img, 1, torch.tensor([1]), torch.tensor([1]))
    assert torch.equal(centred, img)


def test_flip_mirrors_selected_samples_only():
    x = torch.rand(4, 3, 5, 5)
    out = hflip(x, torch.tensor([True, False, True, False]))
    assert torch.equal(out[0, :, :, 0], x[0, :, :, 4]) and torch.equal(out[2], x[2].flip(-1))
    assert torch.equal(out[1], x[1]) and torch.equal(out[3], x[3])


def test_cutout_zeroes_a_clipped_square():
    x = torch.ones(3, 2, 8, 8)
    out = cutout(x, 4, torch.tensor([3, 0, 7]), torch.tensor([3, 0, 5]))
    expected = torch.ones(3, 2, 8, 8)
    expected[0, :, 1:5, 1:5] = 0
    expected[1, :, 0:2, 0:2] = 0  # clipped at the top-left corner
    expected[2, :, 5:8, 3:7] = 0  # clipped at the bottom
    assert torch.equal(out, expected)
    filled = cutout(x, 2, torch.tensor([4, 4, 4]), torch.tensor([4, 4, 4]), fill=(0.25, 0.5))
    assert filled[:, 0, 3:5, 3:5].eq(0.25).all() and filled[:, 1, 3:5, 3:5].eq(0.5).all()
    assert int((filled != 1).sum()) == 3 * 2 * 4


def test_augment_is_deterministic_and_keeps_shape():
    aug = Augment(crop_padding=2, flip=True, cutout=3)
    x = torch.rand(16, 3, 8, 8)
    a = aug(x, torch.Generator().manual_seed(7))
    b = aug(x, torch.Generator().manual_seed(7))
    c = aug(x, torch.Generator().manual_seed(8))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    params = aug.sample(16, 8, 8, torch.Generator().manual_seed(7))
    reference = cutout(hflip(_slow_crop(x, 2, params.crop_y, params.crop_x), params.flip),
                       3, params.cut_y, params.cut_x)
    assert torch.equal(a, reference)
    with pytest.raises(UsageError):
        Augment(crop_padding=-1)


def test_default_augment_follows_dataset():
    digits = load_dataset("digits")
    aug = default_augment(digits, cutout=2, darts_cutout_fill=True)
    assert (aug.crop_padding, aug.flip, aug.cutout) == (1, False, 2)
    assert aug.cutout_fill == digits.mean


# ---------------------------------------------------------------- loader


def _data(n: int = 23) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, 6, 6), generator=gen, dtype=torch.uint8), \
        torch.arange(n)


def _collect(batches) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x.clone(), y.clone()) for x, y in batches]


def _same(a, b) -> bool:
    return len(a) == len(b) and all(torch.equal(x1, x2) and torch.equal(y1, y2)
                                    for (x1, y1), (x2, y2) in zip(a, b))


def test_loader_batches_cover_the_epoch_in_float():
    x, y = _data()
    loader = DeviceLoader(x, y, 5, shuffle=True, seed=1)
    assert len(loader) == 5
    batches = _collect(loader.epoch(0))
    seen = torch.cat([b[1] for b in batches])
    assert sorted(seen.tolist()) == list(range(23)) and seen.tolist() != list(range(23))
    bx, by = batches[0]
    assert bx.dtype == torch.float32 and torch.allclose(bx, x[by].float() / 255)
    assert len(DeviceLoader(x, y, 5, drop_last=True)) == 4
    plain = _collect(DeviceLoader(x, y, 5, shuffle=False).epoch(3))
    assert torch.equal(plain[0][1], torch.arange(5))


def test_loader_is_deterministic_and_resumable():
    x, y = _data()
    aug = Augment(crop_padding=1, flip=True, cutout=2)
    make = lambda seed: DeviceLoader(x, y, 4, augment=aug, seed=seed)  # noqa: E731
    full = _collect(make(3).epoch(2))
    assert _same(full, _collect(make(3).epoch(2)))
    assert not _same(full, _collect(make(3).epoch(1)))
    assert not _same(full, _collect(make(4).epoch(2)))
    assert _same(full[4:], _collect(make(3).epoch(2, start=4)))
    assert _collect(make(3).epoch(2, start=len(full))) == []
    with pytest.raises(UsageError):
        make(3).epoch(0, start=len(full) + 1)
    # plain iteration walks through epochs 0, 1, ...
    loader = make(3)
    assert _same(_collect(iter(loader)), _collect(make(3).epoch(0)))
    assert _same(_collect(iter(loader)), _collect(make(3).epoch(1)))


@pytest.mark.parametrize("augment", [Augment(crop_padding=2, cutout=3),
                                     lambda x, g: x + torch.rand(x.shape, generator=g)])
def test_two_shards_together_equal_one_process(augment):
    x, y = _data(23)
    single = _collect(DeviceLoader(x, y, 6, augment=augment, seed=9).epoch(1))
    shards = [_collect(DeviceLoader(x, y, 6, augment=augment, seed=9, num_shards=2,
                                    shard_index=k).epoch(1)) for k in range(2)]
    assert len(shards[0]) == len(shards[1]) == len(single) == 4
    for (sx, sy), (ax, ay), (bx, by) in zip(single, *shards):
        assert torch.equal(torch.cat([ax, bx]), sx) and torch.equal(torch.cat([ay, by]), sy)
    assert [len(b[1]) for b in shards[0]] == [3, 3, 3, 3]
    assert [len(b[1]) for b in shards[1]] == [3, 3, 3, 2]  # the final 5 images
    with pytest.raises(UsageError, match="divisible by num_shards"):
        DeviceLoader(x, y, 5, num_shards=2)
    with pytest.raises(UsageError, match="shard_index"):
        DeviceLoader(x, y, 6, num_shards=2, shard_index=2)


def test_build_loaders_cover_train_and_test():
    ds = load_dataset("synthetic", n_train=40, n_test=10)
    loaders = build_loaders(ds, 16, augment=default_augment(ds), eval_batch_size=4)
    assert len(loaders.train) == 2 and len(loaders.test) == 3
    test_y = torch.cat([y for _, y in loaders.test.epoch(0)])
    assert torch.equal(test_y, ds.test_y)
