"""Per-epoch history files and TensorBoard hparams for search and retraining (issue 12,
item 13)."""

from __future__ import annotations

import csv
import json
import math

from robustnas.monitor import RunLogger
from robustnas.monitor.history import write_history
from robustnas.monitor.hparams import SEARCH_METRICS, hparam_values, log_hparams
from robustnas.search.config import SearchConfig


def _plugins(run_dir):
    """The plugin names of every summary value in ``run_dir``'s event files."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    names = []
    for path in run_dir.glob("events.out.tfevents.*"):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                names.append((value.tag, value.metadata.plugin_data.plugin_name))
    return names


def test_history_json_keeps_records_and_csv_flattens_them(tmp_path):
    from robustnas.space.darts.catalogue import load_genotype

    records = [{"epoch": 1, "val_acc": 0.5, "loss": math.nan, "ok": True,
                "genotype": load_genotype("DARTS_V2").to_dict(), "nested": {"a": 1}},
               {"epoch": 2, "val_acc": 0.75, "extra": "x"}]
    json_path, csv_path = write_history(tmp_path, records)
    assert json.loads(json_path.read_text())[1] == records[1]
    rows = list(csv.DictReader(csv_path.open()))
    assert list(rows[0]) == ["epoch", "val_acc", "loss", "ok", "genotype", "extra"]
    assert rows[0]["loss"] == "nan" and rows[0]["genotype"].startswith("normal=[(")
    assert rows[1]["val_acc"] == "0.75" and rows[1]["genotype"] == ""


def test_hparam_values_are_flat_tensorboard_types():
    values = hparam_values(SearchConfig(regularizer_options={"advrush": {"h": 1.5}}))
    assert values["arch_lr"] == 3e-4 and values["collapse_max_skips"] == "none"
    assert values["regularizer_options.advrush.h"] == 1.5
    assert values["dataset_options"] == "{}"
    assert all(isinstance(v, (bool, int, float, str)) for v in values.values())


def test_log_hparams_writes_a_session_into_the_run_itself(tmp_path):
    with RunLogger(tmp_path) as writer:
        log_hparams(writer, {"lr": 0.1, "name": "a"}, SEARCH_METRICS)
        writer.scalar("val/acc", 0.5, 1)
    plugins = _plugins(tmp_path)
    assert ("_hparams_/experiment", "hparams") in plugins
    assert ("_hparams_/session_start_info", "hparams") in plugins
    assert [p for p in tmp_path.iterdir() if p.is_dir()] == []  # no sub-run folder
    log_hparams(RunLogger(tmp_path / "off", enabled=False), {"lr": 1}, SEARCH_METRICS)
    assert not (tmp_path / "off").exists()


def test_search_and_retrain_write_history_and_hparams(tmp_path):
    from robustnas.search import run_search
    from robustnas.train import RetrainConfig, retrain

    search = run_search(SearchConfig(
        dataset="synthetic", dataset_options={"n_train": 64, "n_test": 16}, C=4, layers=3,
        batch_size=16, epochs=2, warmup_epochs=1, max_steps_per_epoch=1, draw_every=0,
        device="cpu", out=str(tmp_path / "s")), show_progress=False)
    rows = list(csv.DictReader((search.run_dir / "history.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert {"val_acc", "train_loss", "decisiveness/median_op_margin", "genotype"} <= set(rows[0])
    assert len(json.loads((search.run_dir / "history.json").read_text())) == 2
    assert ("_hparams_/experiment", "hparams") in _plugins(search.run_dir)
    result = retrain(RetrainConfig(genotype="DARTS_V2", dataset="digits", C=4, layers=3,
                                   batch_size=16, epochs=1, max_steps_per_epoch=1,
                                   eval_steps=0, best_by="clean", cutout=2, device="cpu",
                                   out=str(tmp_path / "r")), show_progress=False)
    rows = list(csv.DictReader((result.run_dir / "history.csv").open()))
    assert rows[0]["epoch"] == "1" and "eval_clean_acc" in rows[0]
    assert ("_hparams_/experiment", "hparams") in _plugins(result.run_dir)
