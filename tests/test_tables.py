"""Tabular NAS-Bench-201 robustness benchmarks: format-exact tiny files (made-up values),
extracted and zipped, queries by id/string/genotype with isomorphs, clean failures, CLI."""

from __future__ import annotations

import json
import time
import zipfile

import numpy as np
import pytest

from robustnas.cli import main
from robustnas.errors import DataError, UsageError
from robustnas.space.nb201 import NB201Genotype
from robustnas.space.nb201.sampler import cell_from_code
from robustnas.tables import RobBench201, RobustnessBench, open_bench, query_architecture
from robustnas.tables.source import BenchSource

EPS = {"fgsm@Linf": [0.1, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 255.0],
       "pgd@Linf": [0.1, 0.5, 1.0, 2.0, 3.0, 4.0, 8.0],
       "aa_apgd-ce@Linf": [0.1, 0.5, 1.0, 2.0, 3.0, 4.0, 8.0],
       "aa_square@Linf": [0.1, 0.5, 1.0, 2.0, 3.0, 4.0, 8.0]}
A = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
     "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
# B and B_ISO compute the same function (node 1 feeds nothing, so the op into it does not
# matter): B_ISO's meta entry points at B, the evaluated representative.
B = "|nor_conv_1x1~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|skip_connect~2|"
B_ISO = "|avg_pool_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|skip_connect~2|"
C = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
IDS = {"13433": (A, "13433"), "7": (B, "7"), "20": (B_ISO, "7"), "0": (C, "0")}
CLEAN = {"13433": 0.893, "7": 0.75, "0": 0.1}


def attack_values(key: str, base: float) -> list[float]:
    return [round(base * (1 - n / (len(EPS[key]) + 1)), 4) for n in range(len(EPS[key]))]


def bench_files(dataset: str = "cifar10") -> dict[str, object]:
    """``{relative path: JSON object}`` of a tiny robustness dataset in the published layout."""
    meta = {"ids": {i: {"nb201-string": s, "isomorph": rep} for i, (s, rep) in IDS.items()},
            "epsilons": EPS}
    files: dict[str, object] = {"meta.json": meta}

    def add(key: str, measure: str, values: dict[str, object]) -> None:
        files[f"{dataset}/{key}_{measure}.json"] = {dataset: {key: {measure: values}}}

    add("clean", "accuracy", CLEAN)
    add("clean", "confidence", {i: v / 2 for i, v in CLEAN.items()})
    for key in EPS:
        add(key, "accuracy", {i: attack_values(key, v) for i, v in CLEAN.items()})
    add("brightness", "accuracy", {i: [v, v - 0.01, v - 0.02, v - 0.03, v - 0.04]
                                   for i, v in CLEAN.items()})
    add("fog", "accuracy", {i: v - 0.05 for i, v in CLEAN.items()})
    return files


def write_tree(root, files, broken_cm: bool = True) -> None:
    for rel, obj in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(obj))
    if broken_cm:  # cm files are never needed for accuracy queries: a broken one is harmless
        (root / "cifar10" / "clean_cm.json").write_text("{not json")


@pytest.fixture
def tree(tmp_path):
    write_tree(tmp_path, bench_files())
    return tmp_path


@pytest.fixture
def zipped(tmp_path):
    files = bench_files()
    with zipfile.ZipFile(tmp_path / "meta.zip", "w") as zf:
        zf.writestr("meta.json", json.dumps(files.pop("meta.json")))
    with zipfile.ZipFile(tmp_path / "cifar10-accuracies.zip", "w") as zf:
        for rel, obj in files.items():
            zf.writestr(f"robustness-data/{rel}", json.dumps(obj))
    return tmp_path


@pytest.mark.parametrize("layout", ["tree", "zipped"])
def test_query_by_id_string_and_genotype(layout, request):
    bench = RobustnessBench(request.getfixturevalue(layout))
    by_id = bench.query(13433, "cifar10")
    assert by_id.value("clean") == pytest.approx(0.893)
    assert by_id.value("pgd@Linf", 1.0) == pytest.approx(attack_values("pgd@Linf", 0.893)[2])
    assert by_id.value("fgsm@Linf", 255.0) == pytest.approx(attack_values("fgsm@Linf", 0.893)[-1])
    assert by_id.value("brightness", 3) == pytest.approx(0.873)
    assert by_id.value("fog") == pytest.approx(0.843)
    assert [k for k, _, _ in by_id.entries] == ["clean", *EPS, "brightness", "fog"]
    assert bench.query(A, "cifar10").to_dict() == by_id.to_dict()
    assert bench.query(NB201Genotype.from_string(A), "cifar10", ["clean"]).value("clean") == \
        pytest.approx(0.893)


def test_isomorph_maps_to_representative(tree):
    bench = RobustnessBench(tree)
    iso = bench.query(B_ISO, "cifar10", ["clean", "pgd@Linf"])
    assert (iso.arch_id, iso.representative) == ("20", "7")
    assert iso.value("clean") == pytest.approx(0.75)
    assert bench.query("20", "cifar10", ["clean"]).value("clean") == pytest.approx(0.75)


def test_only_needed_files_are_read(tree, monkeypatch):
    read = []
    original = BenchSource.read_json

    def spy(self, relpath, archives):
        read.append(relpath)
        return original(self, relpath, archives)

    monkeypatch.setattr(BenchSource, "read_json", spy)
    bench = RobustnessBench(tree)
    bench.query(A, "cifar10", ["pgd@Linf"])
    bench.query(B, "cifar10", ["pgd@Linf"])  # cached: nothing new is read
    assert read == ["meta.json", "cifar10/pgd@Linf_accuracy.json"]
    bench.query(A, "cifar10", ["clean"], measure="confidence")
    assert read[-1] == "cifar10/clean_confidence.json"


def test_column_over_all_cells_is_fast(tmp_path):
    """6,466 cells for one key: read once, then the whole column is a numpy slice."""
    rng = np.random.default_rng(0)
    codes = rng.choice(15625, size=6466, replace=False)
    meta = {"ids": {str(c): {"nb201-string": cell_from_code(int(c)).to_string(),
                             "isomorph": str(c)} for c in codes}, "epsilons": EPS}
    pgd = {"cifar10": {"pgd@Linf": {"accuracy": {
        str(c): [float(x) for x in rng.random(7)] for c in codes}}}}
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    (tmp_path / "cifar10" / "pgd@Linf_accuracy.json").write_text(json.dumps(pgd))
    bench = RobustnessBench(tmp_path)
    bench.column("cifar10", "pgd@Linf", 1.0)  # load
    start = time.perf_counter()
    ids, values = bench.column("cifar10", "pgd@Linf", 1.0)
    best = ids[int(np.argmax(values))]
    elapsed = time.perf_counter() - start
    assert len(ids) == 6466 and values.shape == (6466,)
    assert values[ids.index(best)] == pytest.approx(pgd["cifar10"]["pgd@Linf"]["accuracy"][best][2])
    assert elapsed < 0.5


def test_missing_files_name_file_and_origin(tmp_path, tree):
    with pytest.raises(DataError, match=r"missing .*meta\.json \(part of meta\.zip from .*"
                                        r"robustness\.vision"):
        RobustnessBench(tmp_path / "cifar10").query(A, "cifar10")
    with pytest.raises(DataError, match=r"missing .*cifar100/clean_accuracy\.json \(part of "
                                        r"cifar100-accuracies\.zip or cifar100\.zip"):
        RobustnessBench(tree).query(A, "cifar100")
    with pytest.raises(DataError, match="not a directory"):
        RobustnessBench(tmp_path / "nowhere")


@pytest.mark.parametrize("rel, content, message", [
    ("meta.json", "{", "not valid JSON"),
    ("meta.json", json.dumps({"ids": {"1": {"nb201-string": "|x~0|"}}}), "needs 'nb201-string'"),
    ("meta.json", json.dumps({"ids": {"1": {"nb201-string": "|bad~0|+|none~0|none~1|+|none~0|"
                                                            "none~1|none~2|", "isomorph": "1"}}}),
     "unknown operation 'bad'"),
    ("meta.json", json.dumps({"ids": {"1": {"nb201-string": C, "isomorph": "9"}}}),
     "isomorph 9 is not an id"),
    ("cifar10/pgd@Linf_accuracy.json", json.dumps({"cifar10": {"pgd@Linf": {}}}),
     "with measure 'accuracy'"),
    ("cifar10/pgd@Linf_accuracy.json",
     json.dumps({"cifar10": {"pgd@Linf": {"accuracy": {"13433": [0.1, 0.2]}}}}),
     "2 values per id but meta.json lists 7 epsilons"),
    ("cifar10/pgd@Linf_accuracy.json",
     json.dumps({"cifar10": {"pgd@Linf": {"accuracy": {"13433": ["a"] * 7}}}}),
     "is not a number"),
    ("cifar10/pgd@Linf_accuracy.json",
     json.dumps({"cifar10": {"pgd@Linf": {"accuracy": {"99": [0.1] * 7}}}}),
     "id 99 is not in meta.json"),
])
def test_malformed_files_are_one_line_errors(tree, rel, content, message):
    (tree / rel).write_text(content)
    with pytest.raises(DataError, match=message) as info:
        RobustnessBench(tree).query(A, "cifar10", ["pgd@Linf"])
    assert "\n" not in str(info.value)


def test_bad_queries(tree):
    bench = RobustnessBench(tree)
    with pytest.raises(UsageError, match="unknown robustness dataset dataset 'svhn'"):
        bench.query(A, "svhn")
    with pytest.raises(UsageError, match="unknown key 'cw@Linf'"):
        bench.query(A, "cifar10", ["cw@Linf"])
    with pytest.raises(UsageError, match="unknown measure 'cm'"):
        bench.query(A, "cifar10", measure="cm")
    with pytest.raises(DataError, match="id 5 is not in"):
        bench.query(5, "cifar10")
    with pytest.raises(DataError, match="is not in the benchmark"):
        bench.query("|none~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|", "cifar10")
    with pytest.raises(UsageError, match="needs a eps"):
        bench.column("cifar10", "pgd@Linf")
    with pytest.raises(UsageError, match="no eps .*16"):
        bench.column("cifar10", "pgd@Linf", 16)


def test_nas_robbench_201(tmp_path):
    meta = {"ids": {i: {"nb201-string": s, "isomorph": rep} for i, (s, rep) in IDS.items()}}
    data = {"cifar10": {i: {"val_clean_acc": {"1": v}, "val_pgd_3.0_acc": {"1": v / 2},
                            "val_pgd_8.0_acc": {"1": v / 4}, "val_fgsm_3.0_acc": {"1": v / 3},
                            "train_loss": {"1": 1.0}}
                        for i, v in CLEAN.items()}}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    (tmp_path / "NAS-RobBench-201_all.json").write_text(json.dumps(data))
    bench = open_bench(tmp_path, "nas-robbench-201")
    assert isinstance(bench, RobBench201)
    assert bench.keys("cifar10") == ["val_clean", "val_fgsm", "val_pgd"]
    res = bench.query(B_ISO, "cifar10")
    assert res.representative == "7"
    assert res.value("val_clean") == pytest.approx(0.75)
    assert res.value("val_pgd", 8.0) == pytest.approx(0.75 / 4)
    ids, col = bench.column("cifar10", "val_pgd", 3.0)
    assert dict(zip(ids, col))["13433"] == pytest.approx(0.893 / 2)
    assert bench.clean_key("cifar10") == "val_clean"
    from robustnas.tables.correlate import correlate
    from robustnas.tables.nas import TableObjective

    objective = TableObjective(bench, "cifar10", "val_pgd", 8.0)
    assert objective.clean(NB201Genotype.from_string(B_ISO)) == pytest.approx(0.75)
    assert objective(NB201Genotype.from_string(A)) == pytest.approx(0.893 / 4)
    records = {s: {"arch": s, "params": float(n)} for n, s in enumerate((A, B, C))}
    results = correlate(records, bench, "cifar10", proxies=["params"], top_k=2)
    assert {r.column for r in results} == {"val_clean", "val_fgsm@3", "val_pgd@3",
                                           "val_pgd@8"}
    assert {r.subset for r in results} == {"all", "top2"}
    with pytest.raises(DataError, match="missing .*NAS-RobBench-201_all.json"):
        open_bench(tmp_path / "..", "nas-robbench-201").query(A, "cifar10")


def test_python_function(tree):
    result = query_architecture(A, tree, "cifar10", ["clean"])
    assert result.to_dict()["results"] == {"clean": pytest.approx(0.893)}


def test_cli_query(tree, zipped, capsys):
    assert main(["table", "query", A, "--bench-root", str(tree), "--key", "clean",
                 "--key", "pgd@Linf"]) == 0
    out = capsys.readouterr().out
    assert "architecture 13433 (evaluated as 13433)" in out
    assert "clean" in out and "0.8930" in out and "[eps (1/255)]" in out and "8: " in out
    assert main(["table", "query", "20", "--bench-root", str(zipped), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["representative"] == "7" and data["results"]["clean"] == pytest.approx(0.75)
    assert main(["table", "query", A, "--bench-root", str(tree / "cifar10")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "meta.json" in err and "robustness.vision" in err
    assert main(["table", "query", "|bad|", "--bench-root", str(tree)]) == 2


def _robbench_authors_layout(root, runs: dict[str, float] | None = None):
    """NAS-RobBench-201 with the metric names the authors' training script logs: ``val_acc``
    for clean accuracy, a corruption logged as ``('val', 'fog')_acc`` (it sorts before
    every ``val_*``), two runs per metric that differ."""
    meta = {"ids": {i: {"nb201-string": s, "isomorph": rep} for i, (s, rep) in IDS.items()}}
    data = {"cifar10": {i: {"('val', 'fog')_acc": {"1": 0.99, "2": 0.99},
                            "val_acc": {"1": v, "2": v - 0.1},
                            "val_pgd_3.0_acc": {"1": v / 2, "2": v / 2 - 0.1},
                            "train_acc": {"1": 1.0, "2": 1.0}}
                        for i, v in CLEAN.items()}}
    (root / "meta.json").write_text(json.dumps(meta))
    (root / "NAS-RobBench-201_all.json").write_text(json.dumps(data))
    return root


def test_nas_robbench_201_follows_the_authors_names_and_run(tmp_path):
    bench = open_bench(_robbench_authors_layout(tmp_path), "nas-robbench-201")
    assert "val_clean" in bench.keys("cifar10") and "train_clean" in bench.keys("cifar10")
    assert bench.clean_key("cifar10") == "val_clean"  # not the corruption that sorts first
    res = bench.query(A, "cifar10")
    assert res.value("val_clean") == pytest.approx(0.893)  # run '1', as the authors' reader
    assert res.value("val_pgd", 3.0) == pytest.approx(0.893 / 2)
    assert bench.column("cifar10", "val_acc")[1].tolist() == \
        bench.column("cifar10", "val_clean")[1].tolist()  # the authors' name is an alias
    mean = open_bench(tmp_path, "nas-robbench-201", run="mean")
    assert mean.query(A, "cifar10").value("val_clean") == pytest.approx(0.893 - 0.05)
    second = RobBench201(tmp_path, run=2)
    assert second.query(A, "cifar10").value("val_clean") == pytest.approx(0.793)
    with pytest.raises(DataError, match="no run '3'"):
        RobBench201(tmp_path, run="3").query(A, "cifar10")
    with pytest.raises(UsageError, match="run must be"):
        RobBench201(tmp_path, run="last")
    with pytest.raises(UsageError, match="nas-robbench-201 only"):
        open_bench(tmp_path, "robustness", run="mean")


def test_nas_robbench_201_without_clean_accuracy_refuses_to_guess(tmp_path):
    root = _robbench_authors_layout(tmp_path)
    data = json.loads((root / "NAS-RobBench-201_all.json").read_text())
    for metrics in data["cifar10"].values():
        del metrics["val_acc"]
    (root / "NAS-RobBench-201_all.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match="no clean accuracy .*val_acc"):
        open_bench(root, "nas-robbench-201").clean_key("cifar10")


def test_imagenet16_has_no_corruption_keys(tmp_path):
    bench = RobustnessBench(tmp_path)
    assert "fog" in bench.keys("cifar10") and "fog" in bench.keys("cifar100")
    keys = bench.keys("ImageNet16-120")
    assert "fog" not in keys and keys[:2] == ["clean", "fgsm@Linf"]
    with pytest.raises(UsageError, match="ImageNet16-120 has no corruption results"):
        bench.series("ImageNet16-120", "fog")


def test_cli_table_run_option(tmp_path, capsys):
    root = _robbench_authors_layout(tmp_path)
    assert main(["table", "query", A, "--bench-root", str(root), "--bench", "nas-robbench-201",
                 "--key", "val_clean", "--run", "mean"]) == 0
    assert "0.8430" in capsys.readouterr().out
    assert main(["table", "query", A, "--bench-root", str(root), "--key", "clean",
                 "--run", "mean"]) == 2
    assert "nas-robbench-201 only" in capsys.readouterr().err
