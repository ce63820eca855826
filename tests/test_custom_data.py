"""Your own data: ImageFolder layouts and .npz files, their errors, and search, retraining
and evaluation on them (28x28 grey and 64x64 colour)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from robustnas.cli import main
from robustnas.data import load_dataset
from robustnas.errors import DataError, UsageError


def _pattern(label: int, size: int, channels: int, rng: np.random.Generator) -> np.ndarray:
    """A learnable image: class-dependent brightness band plus noise, uint8 (H, W, C)."""
    base = np.zeros((size, size, channels))
    band = size // 4
    base[label * band % size:(label * band % size) + band] = 180
    noise = rng.integers(0, 60, size=(size, size, channels))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def make_folder(root: Path, classes: int = 3, per_class: int = 6, size: int = 64,
                channels: int = 3, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for c in range(classes):
        folder = root / f"class_{c}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            arr = _pattern(c, size, channels, rng)
            img = Image.fromarray(arr[:, :, 0] if channels == 1 else arr)
            img.save(folder / (f"{i}.png" if i % 2 else f"{i}.jpg"), quality=95)
    (root / "class_0" / "notes.txt").write_text("not an image; ignored")
    return root


def make_npz(path: Path, n: int = 24, classes: int = 4, size: int = 28, grey_3d: bool = True,
             **extra: np.ndarray) -> Path:
    rng = np.random.default_rng(1)
    y = np.arange(n) % classes
    x = np.stack([_pattern(int(c), size, 1, rng) for c in y])
    np.savez(path, x=x[..., 0] if grey_3d else x, y=y, **extra)
    return path


# -- loading -----------------------------------------------------------------------------
def test_imagefolder_colour_64_with_holdout(tmp_path):
    root = make_folder(tmp_path / "imgs")
    ds = load_dataset("imagefolder", root)
    assert ds.num_classes == 3 and ds.in_channels == 3 and ds.train_x.shape[2:] == (64, 64)
    assert ds.train_x.dtype == torch.uint8
    assert len(ds.train_y) + len(ds.test_y) == 18
    # stratified: every class in both splits; the same options give the same split
    assert set(ds.test_y.tolist()) == {0, 1, 2} and set(ds.train_y.tolist()) == {0, 1, 2}
    again = load_dataset("imagefolder", root)
    assert torch.equal(again.test_x, ds.test_x)
    other = load_dataset("imagefolder", root, split_seed=1)
    assert not torch.equal(other.test_x, ds.test_x)
    # pixel values survive (PNG is lossless): find one file's image in the dataset
    png = np.array(Image.open(root / "class_1" / "1.png"))
    stacked = torch.cat([ds.train_x, ds.test_x]).permute(0, 2, 3, 1).numpy()
    assert any(np.array_equal(png, img) for img in stacked)


def test_imagefolder_grey_train_test_layout_and_resize(tmp_path):
    make_folder(tmp_path / "d" / "train", classes=2, per_class=3, size=28, channels=1)
    make_folder(tmp_path / "d" / "test", classes=2, per_class=2, size=28, channels=1, seed=5)
    ds = load_dataset("imagefolder", tmp_path / "d")
    assert (ds.in_channels, ds.num_classes, len(ds.train_y), len(ds.test_y)) == (1, 2, 6, 4)
    small = load_dataset("imagefolder", tmp_path / "d", resize=16, channels=3)
    assert small.train_x.shape[1:] == (3, 16, 16)


def test_imagefolder_errors(tmp_path):
    root = make_folder(tmp_path / "imgs", classes=2, per_class=3, size=8)
    (root / "class_2").mkdir()
    with pytest.raises(DataError, match="class 'class_2' has no PNG/JPEG images"):
        load_dataset("imagefolder", root)
    (root / "class_2").rmdir()
    (root / "class_1" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(DataError, match="broken.png: not a readable PNG/JPEG image"):
        load_dataset("imagefolder", root)
    (root / "class_1" / "broken.png").unlink()
    Image.fromarray(np.zeros((9, 8, 3), np.uint8)).save(root / "class_1" / "odd.png")
    with pytest.raises(DataError, match="images differ in size.*odd.png is 8x9.*resize"):
        load_dataset("imagefolder", root)
    assert load_dataset("imagefolder", root, resize=8).train_x.shape[2:] == (8, 8)
    with pytest.raises(DataError, match="no such folder"):
        load_dataset("imagefolder", tmp_path / "missing")
    with pytest.raises(UsageError, match="test_fraction"):
        load_dataset("imagefolder", root, test_fraction=1.5)
    with pytest.raises(UsageError, match="channels must be 1 or 3"):
        load_dataset("imagefolder", root, channels=2)


def test_npz_grey_28_and_given_test_split(tmp_path):
    ds = load_dataset("npz", make_npz(tmp_path / "a.npz"))
    assert (ds.in_channels, ds.num_classes, ds.train_x.shape[2:]) == (1, 4, (28, 28))
    assert len(ds.train_y) + len(ds.test_y) == 24 and set(ds.test_y.tolist()) == {0, 1, 2, 3}
    tx = np.zeros((5, 28, 28, 1), np.uint8)
    ds2 = load_dataset("npz", make_npz(tmp_path / "b.npz", grey_3d=False, x_test=tx,
                                       y_test=np.array([0, 1, 2, 3, 4])), num_classes=6)
    assert (len(ds2.train_y), len(ds2.test_y), ds2.num_classes) == (24, 5, 6)


def test_npz_errors(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((4, 8, 8, 1), np.float32), y=np.arange(4))
    with pytest.raises(DataError, match="must be uint8"):
        load_dataset("npz", bad)
    np.savez(bad, x=np.zeros((4, 8, 8, 1), np.uint8))
    with pytest.raises(DataError, match="missing array\\(s\\) y"):
        load_dataset("npz", bad)
    np.savez(bad, x=np.zeros((4, 8, 8, 1), np.uint8), y=np.arange(3))
    with pytest.raises(DataError, match="labels of shape \\(4,\\)"):
        load_dataset("npz", bad)
    bad.write_bytes(b"garbage")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_dataset("npz", bad)


def test_cli_error_is_one_line(tmp_path, capsys):
    root = make_folder(tmp_path / "imgs", classes=2, per_class=2, size=8)
    (root / "class_1" / "x.jpg").write_bytes(b"no jpeg")
    code = main(["search", "--dataset", "imagefolder", "--data-root", str(root),
                 "--device", "cpu", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "x.jpg: not a readable PNG/JPEG image" in err and "\n" not in err


# -- search, retraining, evaluation ---------------------------------------------------------
def _search_and_retrain(tmp_path: Path, dataset: str, root: Path, options: dict) -> None:
    from robustnas.evaluation.api import evaluate
    from robustnas.search.api import run_search
    from robustnas.search.config import SearchConfig
    from robustnas.train import RetrainConfig, retrain

    result = run_search(SearchConfig(
        dataset=dataset, data_root=str(root), dataset_options=options, C=4, layers=3,
        batch_size=4, epochs=1, warmup_epochs=0, max_steps_per_epoch=1, device="cpu",
        seed=0, out=str(tmp_path / "search"), draw_every=0), show_progress=False)
    genotype = tmp_path / "search" / "genotype.json"
    assert genotype.exists() and result is not None
    run = retrain(RetrainConfig(
        genotype=str(genotype), dataset=dataset, data_root=str(root), dataset_options=options,
        C=4, layers=3, batch_size=4, epochs=1, max_steps_per_epoch=1, val_n=4, eval_n=4,
        eval_steps=1, eval_batch_size=4, steps=1, device="cpu", seed=0,
        out=str(tmp_path / "train"), cutout=2, auxiliary_weight=0.4, drop_path=0.2),
        show_progress=False)
    report = evaluate(str(run.last_checkpoint), attacks="clean,pgd2", n=4, batch_size=4,
                      device="cpu", sanity=False, progress=False)
    assert report is not None


def test_search_retrain_evaluate_on_imagefolder_colour(tmp_path):
    root = make_folder(tmp_path / "imgs", classes=3, per_class=6, size=16)
    _search_and_retrain(tmp_path, "imagefolder", root, {"test_fraction": 0.3})


@pytest.mark.slow
def test_search_retrain_evaluate_on_imagefolder_64_colour(tmp_path):
    root = make_folder(tmp_path / "imgs", classes=3, per_class=6, size=64)
    _search_and_retrain(tmp_path, "imagefolder", root, {"test_fraction": 0.3})


def test_search_retrain_evaluate_on_npz_28_grey(tmp_path):
    path = make_npz(tmp_path / "d.npz", n=32)
    _search_and_retrain(tmp_path, "npz", path, {})


def test_study_on_an_imagefolder(tmp_path):
    """A study (a named cell and a random one) trains and evaluates on your own images."""
    import yaml

    from robustnas.studies import run_study

    root = make_folder(tmp_path / "imgs", classes=3, per_class=6, size=16)
    spec = tmp_path / "own.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "own", "out": str(tmp_path / "own"), "seeds": [0],
        "architectures": ["DARTS_V2", {"random": 1, "seed": 2}],
        "training": {"dataset": "imagefolder", "data_root": str(root),
                     "dataset_options": {"test_fraction": 0.3}, "device": "cpu", "C": 4,
                     "layers": 3, "epochs": 1, "batch_size": 4, "cutout": 0, "drop_path": 0,
                     "auxiliary_weight": 0, "eval_every": 0, "max_steps_per_epoch": 1},
        "evaluation": {"attacks": "clean,pgd2", "eps": [0.05], "n": 4}}))
    run = run_study(spec)
    rows = json.loads((tmp_path / "own" / "report" / "study.json").read_text())["rows"]
    assert len(rows) == 2 and all(r["n"] == 1 for r in rows)
    assert run.trials_run == 2
