"""The NARes table reader: the authors' cifar10.jsonl format, queries, search, CLI, errors."""

from __future__ import annotations

import io
import json
import random
import tarfile

import numpy as np
import pytest

from robustnas.cli import main
from robustnas.errors import DataError, UsageError
from robustnas.space.nares.genotype import NAResGenotype, all_genotypes
from robustnas.tables import NAResBench, open_bench, query_architecture
from robustnas.tables.nares import CORRUPTIONS

WRN_34_10 = NAResGenotype.from_string("5,10,5,10,5,10")
WRN_28_10 = NAResGenotype.from_string("4,10,4,10,4,10")
HISTORY = ("train_loss", "train_acc", "val_loss", "val_acc", "pgd", "pgd_stable", "pgd_lip",
           "pgd_loss", "cw", "cw_stable", "cw_lip", "cw_loss")


def run(seed: int, best: int, offset: float, epochs: int = 4) -> dict:
    """One training run as the authors' file stores it: per-epoch lists, the value of list
    ``name`` at epoch ``e`` is ``offset + 10 * e + position of name``."""
    out = {"seed": seed, "gpu_type": "NVIDIA A100-SXM4-80GB", "timestamp": "2023-06-01",
           "training_time": 0.42, "best_epoch": best}
    for k, name in enumerate(HISTORY):
        out[name] = [round(offset + 10 * e + k, 4) for e in range(epochs)]
    return out


def best_entry(offset: float, corruptions: tuple[str, ...] = ("fog", "snow")) -> dict:
    """One ``test_best`` entry (attacks on the best epoch's model, CIFAR-10-C)."""
    return {"test_clean_acc": 80.0 + offset, "test_loss": 0.6,
            "Linf_fgsm_acc": 60.0 + offset, "Linf_fgsm_stable": 70.0,
            "Linf_pgd_acc": 55.0 + offset, "Linf_pgd_stable": 71.0, "Linf_pgd_lip": 2.5,
            "Linf_cw_acc": 54.0 + offset, "Linf_cw_stable": 72.0, "Linf_cw_lip": 2.6,
            "Linf_aa_acc": 50.0 + offset,
            "corruptions": {name: {str(s): {"acc": 90.0 - 10 * s - n, "loss": 0.1 * s}
                                   for s in range(1, 6)}
                            for n, name in enumerate(corruptions)}}


def record(arch_id: int, genotype: NAResGenotype, offset: float = 0.0, best: int = 2,
           runs: int = 1) -> dict:
    return {"arch_id": arch_id, "arch": genotype.to_authors_dict(),
            "MACs": 1000.0 + arch_id, "Params": 30.0 + arch_id,
            "train": [run(s, best, offset + s) for s in range(runs)],
            "test_best": [best_entry(offset + s) for s in range(runs)]}


def write_jsonl(path, records) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.fixture
def root(tmp_path):
    """Five architectures; WRN-34-10 (id 3) has two runs, id 5 no test records."""
    others = [NAResGenotype.from_string(s) for s in ("7,8,4,12,11,16", "9,14,5,8,4,10")]
    records = [record(1, WRN_28_10, 0.0), record(2, others[0], 3.0, best=1),
               record(3, WRN_34_10, 1.0, best=3, runs=2), record(4, others[1], 2.0, best=0)]
    missing = record(5, NAResGenotype.from_string("11,16,11,16,11,16"), 5.0)
    missing["test_best"] = []
    write_jsonl(tmp_path / "cifar10.jsonl", [*records, missing])
    return tmp_path


def test_validation_metrics_are_read_at_the_best_epoch(root):
    bench = open_bench(root, "nares")
    assert isinstance(bench, NAResBench) and bench.space == "nares"
    res = bench.query("4,10,4,10,4,10", "cifar10")
    assert (res.arch_id, res.representative, res.string) == ("1", "1", "4,10,4,10,4,10")
    # best_epoch 2: list k holds 10 * 2 + k (see run()).
    assert res.value("val_clean_acc") == pytest.approx(23)  # val_acc, position 3
    assert res.value("val_pgd_acc") == pytest.approx(24)
    assert res.value("val_cw_acc") == pytest.approx(28)
    assert res.value("train_acc") == pytest.approx(21)
    assert res.value("val_cw_loss") == pytest.approx(31)
    assert res.value("best_epoch") == 2
    assert res.value("test_pgd_acc") == 55.0 and res.value("test_aa_acc") == 50.0
    assert res.value("macs") == 1001.0 and res.value("params") == 31.0
    # Corruptions: the mean of all corruptions and severities; each one by severity.
    assert res.value("test_corrupt_acc") == pytest.approx(np.mean(
        [90 - 10 * s - n for s in range(1, 6) for n in range(2)]))
    assert res.value("test_corrupt_snow", 3) == pytest.approx(59.0)


def test_runs_are_averaged_and_missing_tests_are_nan(root):
    bench = NAResBench(root)
    two = bench.query(WRN_34_10, "cifar10", ["val_pgd_acc", "test_clean_acc"])
    # Runs 0 and 1 with offsets 1 and 2 at best epoch 3: (31 + 4 + 32 + 4) / 2.
    assert two.value("val_pgd_acc") == pytest.approx(35.5)
    assert two.value("test_clean_acc") == pytest.approx(81.5)
    none = bench.query("11,16,11,16,11,16", "cifar10", ["test_aa_acc", "val_clean_acc"])
    assert np.isnan(none.value("test_aa_acc")) and none.value("val_clean_acc") == 28.0
    available = bench.available_keys("cifar10")
    assert "test_corrupt_fog" in available and "test_corrupt_saturate" not in available
    assert bench.default_keys("cifar10") == [
        "val_clean_acc", "val_pgd_acc", "val_cw_acc", "test_clean_acc", "test_fgsm_acc",
        "test_pgd_acc", "test_cw_acc", "test_aa_acc", "test_corrupt_acc"]
    assert bench.clean_key("cifar10") == "val_clean_acc" and bench.search_key == "val_pgd_acc"
    assert set(f"test_corrupt_{c}" for c in CORRUPTIONS) <= set(bench.keys("cifar10"))


def test_ids_strings_genotypes_and_aliases(root):
    bench = NAResBench(root)
    by_id = bench.query(3, "cifar10", ["VAL_PGD_ACC", "pgd", "Linf_aa_acc", "MACs"])
    assert [k for k, _, _ in by_id.entries] == ["val_pgd_acc", "val_pgd_acc", "test_aa_acc",
                                                "macs"]
    for arch in ("3", " 5,10, 5,10,5,10 ", WRN_34_10, WRN_34_10.to_authors_dict(),
                 WRN_34_10.to_dict()):
        assert bench.query(arch, "cifar10", ["val_pgd_acc"]).arch_id == "3"
    ids, values = bench.column("cifar10", "test_pgd_acc")
    assert ids == ("1", "2", "3", "4", "5") and np.isnan(values[-1])
    assert bench.rank("2", "cifar10", "test_pgd_acc") == (1, 5)
    assert query_architecture("1", root, bench="nares", keys=["val_clean_acc"]).to_dict() == {
        "id": "1", "representative": "1", "arch": "4,10,4,10,4,10", "dataset": "cifar10",
        "measure": "accuracy", "results": {"val_clean_acc": pytest.approx(23.0)}}


def test_the_file_is_streamed_once(root, monkeypatch):
    bench = NAResBench(root)
    reads = []
    original = NAResBench._lines

    def counting(self):
        reads.append(1)
        yield from original(self)

    monkeypatch.setattr(NAResBench, "_lines", counting)
    for arch in ("1", "2", WRN_34_10):
        bench.query(arch, "cifar10")
    bench.column("cifar10", "val_pgd_acc")
    assert reads == [1]


def test_release_archive_is_read_without_extracting(root, tmp_path_factory):
    other = tmp_path_factory.mktemp("txz")
    data = (root / "cifar10.jsonl").read_bytes()
    with tarfile.open(other / "nares.txz", "w:xz") as archive:
        info = tarfile.TarInfo("nares/cifar10.jsonl")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    bench = NAResBench(other)
    assert bench.query("3", "cifar10", ["val_pgd_acc"]).value("val_pgd_acc") == 35.5
    assert bench.series("cifar10", "val_pgd_acc").source.endswith("nares.txz:cifar10.jsonl")


@pytest.mark.parametrize("arch, message", [
    ("99", "architecture id 99 is not in the NARes table"),
    ("5,10,5,10,5,12", "architecture 5,10,5,10,5,12 is not in the NARes table"),
    ("1,1,1,1,1,1", "architecture 1,1,1,1,1,1 is not in the NARes table"),
    ("5,10,5", "six comma-separated integers"),
    ("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|",
     "neither a NARes arch_id nor a string D1,W1"),
])
def test_unknown_architectures(root, arch, message):
    with pytest.raises(DataError, match=message):
        NAResBench(root).query(arch, "cifar10")


def test_bad_keys_datasets_and_options(root):
    bench = NAResBench(root)
    with pytest.raises(UsageError, match="unknown NARes key 'bogus'"):
        bench.query("1", "cifar10", ["bogus"])
    with pytest.raises(UsageError, match="unknown NARes dataset 'cifar100'"):
        bench.query("1", "cifar100")
    with pytest.raises(UsageError, match="test_corrupt_fog needs a severity"):
        bench.column("cifar10", "test_corrupt_fog")
    with pytest.raises(UsageError, match="--run applies to nas-robbench-201 only"):
        open_bench(root, "nares", run="1")


def _broken(tmp_path, lines: list[str]):
    (tmp_path / "cifar10.jsonl").write_text("\n".join(lines) + "\n")
    return NAResBench(tmp_path)


def _good(arch_id: int = 1, genotype: NAResGenotype = WRN_34_10) -> dict:
    return record(arch_id, genotype)


@pytest.mark.parametrize("lines, message", [
    ([json.dumps(_good()), "{\"arch_id\": 2, "], r"cifar10.jsonl:2: not valid JSON"),
    ([json.dumps(_good()), "", "[1, 2]"], r"cifar10.jsonl:3: not a JSON object"),
    ([json.dumps({**_good(), "arch_id": 0})], r":1: arch_id must be a positive integer"),
    ([json.dumps({**_good(), "arch": {**WRN_34_10.to_authors_dict(), "W2": 9}})],
     r":1: arch: W2 = 9 is not a NARes choice"),
    ([json.dumps(_good()), json.dumps(_good())], r":2: arch_id 1 appears twice"),
    ([json.dumps(_good()), json.dumps(_good(2))], r":2: architecture 5,10,5,10,5,10 appears "
                                                  r"twice \(arch_id 1 and 2\)"),
    ([json.dumps({**_good(), "train": []})], r":1: 'train' must be a non-empty list"),
    ([json.dumps({**_good(), "train": [{**run(0, 7, 0.0), "best_epoch": 7}]})],
     r":1: train\[0\].train_acc must be a per-epoch list with an entry at best_epoch 7"),
    ([json.dumps({**_good(), "test_best": [best_entry(0), best_entry(1)]})],
     r":1: 'test_best' must be a list with one entry per run"),
    ([json.dumps({**_good(), "test_best": [{**best_entry(0), "Linf_aa_acc": "high"}]})],
     r":1: test_best.Linf_aa_acc is 'high', not a number"),
    ([""], r"cifar10.jsonl: no records"),
])
def test_malformed_lines_name_the_line(tmp_path, lines, message):
    with pytest.raises(DataError, match=message) as info:
        _broken(tmp_path, lines).query("1", "cifar10")
    assert "\n" not in str(info.value)


def test_missing_file_and_root(tmp_path):
    with pytest.raises(DataError, match=r"missing .*cifar10.jsonl \(the file in nares.txz "
                                        r"from NARes"):
        NAResBench(tmp_path).query("1", "cifar10")
    with pytest.raises(DataError, match="is not a directory"):
        NAResBench(tmp_path / "nowhere")
    (tmp_path / "nares.txz").write_bytes(b"not an archive")
    with pytest.raises(DataError, match="nares.txz: not a readable nares.txz archive"):
        NAResBench(tmp_path).query("1", "cifar10")


# -- command line ---------------------------------------------------------------------------
def test_cli_query_text_json_ranks_and_files(root, tmp_path, capsys):
    assert main(["table", "query", "5,10,5,10,5,10", "--bench", "nares", "--bench-root",
                 str(root), "--key", "val_pgd_acc", "--key", "test_aa_acc"]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0] == "architecture 3 (evaluated as 3): 5,10,5,10,5,10"
    assert "val_pgd_acc  35.5000" in text and "test_aa_acc  51.5000" in text
    genotype_file = tmp_path / "wrn.json"
    genotype_file.write_text(json.dumps(WRN_34_10.to_dict()))
    assert main(["table", "query", str(genotype_file), "--bench", "nares", "--bench-root",
                 str(root), "--json", "--ranks", "--key", "VAL_PGD_ACC"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["id"] == "3" and data["results"] == {"val_pgd_acc": 35.5}
    assert data["ranks"] == {"val_pgd_acc": [1, 5]}
    assert main(["table", "query", "4,10,4,10,4,10", "--bench", "nares", "--bench-root",
                 str(root), "--ranks", "--key", "test_corrupt_fog"]) == 0
    assert "test_corrupt_fog [severity, rank of 5]" in capsys.readouterr().out
    assert main(["table", "query", "5,10,5,10,5,16", "--bench", "nares", "--bench-root",
                 str(root)]) == 2
    assert "not in the NARes table" in capsys.readouterr().err


@pytest.fixture(scope="module")
def full_root(tmp_path_factory):
    """All 15,625 architectures (lean records in the authors' format: two epochs, no
    corruptions), ids in a made-up MACs order."""
    root = tmp_path_factory.mktemp("full")
    rng = random.Random(0)
    archs = sorted(all_genotypes(), key=lambda g: (sum(g.depths) * sum(g.widths),
                                                   g.coordinates()))
    with (root / "cifar10.jsonl").open("w") as handle:
        for arch_id, g in enumerate(archs, start=1):
            r = record(arch_id, g, best=1)
            r["train"][0] = {**run(0, 1, 0.0, epochs=2),
                             "pgd": [0.0, round(30 + 10 * rng.random(), 3)]}
            r["test_best"][0] = {**best_entry(rng.random(), ()), "corruptions": {}}
            handle.write(json.dumps(r) + "\n")
    return root


def test_cli_search_reports_the_found_test_metrics(full_root, tmp_path, capsys):
    out = tmp_path / "search"
    assert main(["table", "search", "--bench", "nares", "--bench-root", str(full_root),
                 "--budget", "15", "--seeds", "2", "--methods", "random,evolution,tpe,nsga2",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("objective: cifar10 val_pgd_acc; best in table")
    assert "partial table" not in text and "test_aa_acc" in text
    data = json.loads((out / "curves.json").read_text())
    assert data["table_cells"] == {"with_value": 15625, "evaluated": 15625}
    assert set(data["found"]) == {"random", "evolution", "tpe", "nsga2"}
    bench = NAResBench(full_root)
    for method, ids in data["found"].items():
        assert len(ids) == 2 and all(i is not None for i in ids)
        pgd = [bench.query(i, "cifar10", ["val_pgd_acc"]).value("val_pgd_acc") for i in ids]
        assert data["found_metrics"][method]["val_pgd_acc"]["mean"] == pytest.approx(
            np.mean(pgd))
        assert np.mean(pgd) == pytest.approx(np.mean(np.asarray(data["curves"][method])[:, -1]))
        assert set(data["found_metrics"][method]) >= {"val_clean_acc", "test_clean_acc",
                                                      "test_pgd_acc", "test_aa_acc"}
    assert (out / "best_found.png").read_bytes()[:4] == b"\x89PNG"


def test_search_strategies_use_nares_architectures(full_root):
    from robustnas.tables.nas import STRATEGIES, TableObjective

    bench = NAResBench(full_root)
    objective = TableObjective(bench, "cifar10", "val_pgd_acc")
    assert objective.space.name == "nares"
    curve = STRATEGIES.get("evolution")(objective, 30, 0)
    assert objective.queries == 30 and all(b >= a for a, b in zip(curve, curve[1:]))
    assert objective.best is not None and bench.column(
        "cifar10", "val_pgd_acc")[1][int(objective.best) - 1] == curve[-1]
    objective.reset()
    assert STRATEGIES.get("evolution")(objective, 30, 0) == curve  # seeded


def test_correlate_on_nares_cells(root, tmp_path, capsys):
    proxies = tmp_path / "proxies.jsonl"
    archs = ["4,10,4,10,4,10", "7,8,4,12,11,16", "5,10,5,10,5,10", "9,14,5,8,4,10",
             "11,16,11,16,11,16", "4,8,4,8,4,8"]  # the last is not in the table
    proxies.write_text("".join(json.dumps({"arch": a, "params": float(n), "macs": float(-n),
                                           "jacobian_frobenius": float(n % 3),
                                           "hessian_top_eigenvalue": 1.0,
                                           "lipschitz_log10": float(n), "settings": {}}) + "\n"
                               for n, a in enumerate(archs)))
    out = tmp_path / "corr"
    assert main(["correlate", "--bench", "nares", "--bench-root", str(root), "--no-compute",
                 "--proxies", str(proxies), "--out", str(out), "--top-k", "3"]) == 0
    text = capsys.readouterr().out
    assert "all | val_pgd_acc | 5 |" in text and "top3 | test_aa_acc | 2 |" in text
    results = json.loads((out / "correlations.json").read_text())
    assert {r["column"] for r in results} >= {"val_clean_acc", "test_pgd_acc"}


def test_proxies_are_measured_on_nares_networks(digits):
    import torch

    from robustnas.tables.proxies import ProxySettings, load_cell, measure_cell

    settings = ProxySettings(n=4, hessian_iters=2)
    cell = load_cell("1,1,1,1,1,1")
    assert isinstance(cell, NAResGenotype)
    x = digits.train_x[:4].float() / 255
    values = measure_cell(cell, x, digits.train_y[:4], digits, settings)
    assert values["params"] == 77_562 and all(np.isfinite(v) for v in values.values())
    assert torch.get_num_threads() == 1


def test_nares_queries_do_not_import_torch(root):
    """Reading the table needs no PyTorch (each command start would pay for it)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = ("import contextlib, io, sys\n"
            "from robustnas.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    assert main(['table', 'query', '5,10,5,10,5,10', '--bench', 'nares', "
            f"'--bench-root', {str(root)!r}, '--ranks']) == 0\n"
            "print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))\n")
    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=root, env=dict(os.environ, PYTHONPATH=str(repo)), timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
