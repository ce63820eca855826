"""TensorBoard logging, progress bars and meters."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from robustnas.errors import UsageError
from robustnas.monitor import AverageMeter, EpochMeter, RunLogger, progress
from robustnas.monitor import meters as meters_module


def read_events(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0,
                                                        "tensors": 0})
    acc.Reload()
    return acc


def test_run_logger_round_trip(tmp_path):
    image = np.zeros((6, 10, 3), dtype=np.uint8)
    image[:, :5, 0] = 255
    with RunLogger(tmp_path / "run") as log:
        log.scalar("loss", 1.5, 1)
        log.scalar("loss", torch.tensor(0.25), 2)
        log.scalars({"acc": 0.5, "lr": 0.1, "skipped": None}, 3, prefix="train")
        log.scalars({"acc": 0.75}, 3, prefix="val/")
        log.image("cell/normal", image, 3)
        log.text("genotype", "normal=[(sep_conv_3x3, 0)]", 3)
    assert list((tmp_path / "run").glob("events.out.tfevents.*"))
    acc = read_events(tmp_path / "run")
    tags = acc.Tags()
    assert set(tags["scalars"]) == {"loss", "train/acc", "train/lr", "val/acc"}
    assert [(e.step, e.value) for e in acc.Scalars("loss")] == [(1, 1.5), (2, 0.25)]
    assert acc.Scalars("train/acc")[0].value == 0.5
    assert acc.Scalars("val/acc")[0].value == 0.75
    logged = acc.Images("cell/normal")[0]
    assert (logged.step, logged.width, logged.height) == (3, 10, 6)
    decoded = np.asarray(Image.open(io.BytesIO(logged.encoded_image_string)).convert("RGB"))
    np.testing.assert_array_equal(decoded, image)
    from tensorboard.util import tensor_util

    text_tag = next(t for t in tags["tensors"] if t.startswith("genotype"))
    text = tensor_util.make_ndarray(acc.Tensors(text_tag)[0].tensor_proto)
    assert text.item().decode() == "normal=[(sep_conv_3x3, 0)]"


def test_disabled_logger_writes_nothing(tmp_path):
    log = RunLogger(tmp_path / "rank1", enabled=False)
    with log:
        log.scalar("loss", 1.0, 0)
        log.scalars({"a": 1.0}, 0)
        log.image("img", np.zeros((2, 2, 3), dtype=np.uint8), 0)
        log.text("t", "x", 0)
        log.flush()
    assert not (tmp_path / "rank1").exists()
    assert list(tmp_path.iterdir()) == []


def test_closed_logger_ignores_calls(tmp_path):
    log = RunLogger(tmp_path)
    log.close()
    log.scalar("late", 1.0, 5)
    log.close()
    assert "late" not in read_events(tmp_path).Tags()["scalars"]


def test_bad_values_raise_usage_error(tmp_path):
    with RunLogger(tmp_path) as log:
        with pytest.raises(UsageError, match="one value"):
            log.scalar("x", torch.ones(2), 0)
        with pytest.raises(UsageError, match="uint8"):
            log.image("x", np.zeros((4, 4, 3), dtype=np.float32), 0)
        with pytest.raises(UsageError, match="H x W x C"):
            log.image("x", np.zeros((4, 4, 2), dtype=np.uint8), 0)


def test_importing_robustnas_does_not_import_heavy_modules():
    code = ("import sys, robustnas, robustnas.monitor, robustnas.viz; "
            "heavy = [m for m in ('tensorboard', 'tqdm', 'matplotlib') if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_progress_disabled_is_silent(capsys):
    with progress(10, desc="epoch 0", enabled=False) as bar:
        for _ in range(10):
            bar.update(loss=0.5, acc=0.9)
        bar.set_postfix(loss=0.1)
        bar.write("hello")
    assert bar.n == 10
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_progress_enabled_writes_to_stderr(capsys):
    with progress(4, desc="epoch 3", initial=1) as bar:
        for _ in range(3):
            bar.update(loss=torch.tensor(0.123456), acc=0.5)
    captured = capsys.readouterr()
    assert captured.out == ""
    final = captured.err.replace("\r", "\n").strip().splitlines()[-1]
    assert "epoch 3" in final and "4/4" in final
    assert "loss=0.1235" in final and "acc=0.5" in final
    assert "it/s" in final or "s/it" in final
    assert bar.n == 4


def test_average_meter_is_weighted_by_batch_size():
    values, sizes = [0.5, 2.0, 1.0], [10, 30, 60]
    meter = AverageMeter()
    assert np.isnan(meter.avg)
    for v, n in zip(values, sizes):
        meter.update(v, n)
    assert meter.count == 100
    assert meter.avg == pytest.approx(np.average(values, weights=sizes))
    tensor_meter = AverageMeter()
    for v, n in zip(values, sizes):
        tensor_meter.update(torch.tensor(v), n)
    assert tensor_meter.avg == pytest.approx(meter.avg)
    restored = AverageMeter()
    restored.load_state_dict(tensor_meter.state_dict())
    assert restored.avg == pytest.approx(meter.avg) and restored.count == 100


def test_epoch_meter_averages_and_throughput(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(meters_module.time, "perf_counter", lambda: clock[0])
    meter = EpochMeter()
    meter.update(8, loss=1.0, acc=0.25)
    meter.update(24, loss=torch.tensor(2.0), acc=0.5)
    clock[0] += 4.0
    assert meter["loss"] == pytest.approx((8 * 1.0 + 24 * 2.0) / 32)
    assert meter["acc"] == pytest.approx((8 * 0.25 + 24 * 0.5) / 32)
    assert meter.images == 32 and meter.elapsed == pytest.approx(4.0)
    assert meter.images_per_second == pytest.approx(8.0)
    summary = meter.summary()
    assert summary["images_per_second"] == pytest.approx(8.0) and "loss" in summary

    # Resume: the saved time and counts carry on in a fresh meter.
    state = meter.state_dict()
    clock[0] += 50.0  # time while the job was down does not count
    resumed = EpochMeter()
    resumed.load_state_dict(state)
    resumed.update(32, loss=0.0)
    clock[0] += 4.0
    assert resumed.images == 64 and resumed.elapsed == pytest.approx(8.0)
    assert resumed.images_per_second == pytest.approx(8.0)
    assert resumed["loss"] == pytest.approx((8 * 1.0 + 24 * 2.0) / 64)
