"""A corpus of bad inputs and faults (issue 10): every case must end with a non-zero exit
status, exactly one line on stderr that names the problem, no traceback, and nothing
half-written. Each row is one case; a regression shows as the row's id.

Divergence (exit status 3) is covered in ``test_divergence.py``; kills and resume in
``test_train.py`` and ``test_search.py``.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import re
from pathlib import Path

import pytest
import torch

from robustnas.cli import main
from robustnas.io import atomic_torch_save, load_checkpoint

BIG_INT = "1180591620717411303424"  # 2**70: overflowed the RNG seeding
SEARCH = ["search", "--dataset", "synthetic", "--channels", "4", "--layers", "3",
          "--batch-size", "16", "--device", "cpu", "--quiet"]
RETRAIN = ["retrain", "DARTS_V2", "--dataset", "digits", "--channels", "4", "--layers", "3",
           "--device", "cpu", "--quiet"]

RETRAIN_NUMBERS = ("--eps", "--step-size", "--trades-beta", "--lr", "--lr-gamma", "--momentum",
                   "--weight-decay", "--grad-clip", "--auxiliary-weight", "--drop-path")
RETRAIN_INTEGERS = ("--steps", "--epochs", "--batch-size", "--channels", "--layers", "--cutout",
                    "--eval-every", "--eval-n", "--eval-steps", "--checkpoint-every", "--seed")


def _genotype(**changes) -> str:
    data = {"normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", 1], ["skip_connect", 0],
                       ["sep_conv_3x3", 2]],
            "reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1], ["skip_connect", 2],
                       ["max_pool_3x3", 0]]}
    data.update(changes)
    return json.dumps(data)


# Files a case may refer to as {name} in its arguments (text, or bytes for binary files).
FILES: dict[str, str | bytes] = {
    "binary.yaml": bytes(range(256)) * 4,
    "latin1.yaml": "w_lr: 0.1  # café\n".encode("latin-1"),
    "nul.yaml": b"w_lr: 0.1\x00\x01\n",
    "deep.yaml": "[" * 100_000,
    "list.yaml": "- 1\n- 2\n",
    "typo.yaml": "w_lrr: 0.1\n",
    "inf.yaml": "w_lr: .inf\n",
    "nan.yaml": "arch_lr: .nan\n",
    "retrain_inf.yaml": "lr: .inf\n",
    "retrain_huge.yaml": "eps: 1.0e+400\n",
    "dup_edge.json": _genotype(normal=[["sep_conv_3x3", 0], ["sep_conv_3x3", 0],
                                       ["skip_connect", 0], ["sep_conv_3x3", 2]]),
    "concat_float.json": _genotype(normal_concat=[2.7, 3]),
    "concat_string.json": _genotype(reduce_concat=["2", 3]),
    "index_bool.json": _genotype(normal=[["sep_conv_3x3", True], ["sep_conv_3x3", 1],
                                         ["skip_connect", 0], ["sep_conv_3x3", 2]]),
    "index_float.json": _genotype(normal=[["sep_conv_3x3", 0.0], ["sep_conv_3x3", 1],
                                          ["skip_connect", 0], ["sep_conv_3x3", 2]]),
    "unknown_op.json": _genotype(normal=[["conv_9x9", 0], ["sep_conv_3x3", 1],
                                         ["skip_connect", 0], ["sep_conv_3x3", 2]]),
    "bad_input.json": _genotype(normal=[["sep_conv_3x3", 0], ["sep_conv_3x3", 1],
                                        ["skip_connect", 0], ["sep_conv_3x3", 7]]),
    "nested.json": "[" * 100_000,
    "many_nodes.json": _genotype(normal=[["sep_conv_3x3", 0], ["sep_conv_3x3", 1]] * 20_000,
                                 reduce=[["max_pool_3x3", 0], ["max_pool_3x3", 1]] * 20_000),
    "100_nodes.json": _genotype(normal=[["sep_conv_3x3", 0], ["sep_conv_3x3", 1]] * 100,
                                reduce=[["max_pool_3x3", 0], ["max_pool_3x3", 1]] * 100),
    "binary.json": bytes(range(256)),
    "not_json.json": "normal: [sep_conv_3x3, 0]\n",
    "odd_edges.json": _genotype(normal=[["sep_conv_3x3", 0]]),
}

# (id, arguments, text the single stderr line must contain)
CASES: list[tuple[str, list[str], str]] = [
    # -- NaN / infinite / overflowing option values (A1, A2)
    ("search-set-nan", [*SEARCH, "--set", "w_lr=.nan"], "option w_lr"),
    ("search-set-inf", [*SEARCH, "--set", "w_lr=.inf"], "option w_lr"),
    ("search-set-huge", [*SEARCH, "--set", "grad_clip=1e400"], "option grad_clip"),
    ("search-yaml-inf", [*SEARCH, "--config", "{inf.yaml}"], "option w_lr"),
    ("search-yaml-nan", [*SEARCH, "--config", "{nan.yaml}"], "option arch_lr"),
    ("search-seed-overflow", [*SEARCH, "--seed", BIG_INT], "argument --seed"),
    ("search-set-seed-overflow", [*SEARCH, "--set", f"seed={BIG_INT}"], "option seed"),
    ("search-epochs-float", [*SEARCH, "--epochs", "1e400"], "argument --epochs"),
    ("retrain-lr-inf", [*RETRAIN, "--lr", "inf"], "argument --lr"),
    ("retrain-lr-nan", [*RETRAIN, "--lr", "nan"], "argument --lr"),
    ("retrain-set-lr-nan", [*RETRAIN, "--set", "lr=.nan"], "option lr"),
    ("retrain-yaml-lr-inf", [*RETRAIN, "--config", "{retrain_inf.yaml}"], "option lr"),
    ("retrain-yaml-eps-huge", [*RETRAIN, "--config", "{retrain_huge.yaml}"], "option eps"),
    *[(f"retrain{opt}-1e400", [*RETRAIN, opt, "1e400"], f"argument {opt}")
      for opt in RETRAIN_NUMBERS],
    *[(f"retrain{opt}-2**70", [*RETRAIN, opt, BIG_INT], f"argument {opt}")
      for opt in RETRAIN_INTEGERS],
    ("evaluate-seed-overflow", ["evaluate", "{model.pt}", "--seed", BIG_INT],
     "argument --seed"),
    ("evaluate-n-overflow", ["evaluate", "{model.pt}", "--n", BIG_INT], "argument --n"),
    ("evaluate-eps-1e400", ["evaluate", "{model.pt}", "--eps", "1e400", "--out",
                            "{out}/report.json"], "option eps"),
    ("evaluate-eps-inf", ["evaluate", "{model.pt}", "--eps", "inf", "--out",
                          "{out}/report.json"], "option eps"),
    ("evaluate-large-eps-1e400", ["evaluate", "{model.pt}", "--large-eps", "1e400", "--out",
                                  "{out}/report.json"], "option large_eps"),
    # -- checkpoints: malicious pickles, garbage, truncated files (passed before issue 10;
    #    the messages no longer advise weights_only=False nor add torch's warnings)
    ("checkpoint-code-info", ["info", "{evil.pt}"], "unsupported GLOBAL"),
    ("checkpoint-code-evaluate", ["evaluate", "{evil.pt}", "--out", "{out}/report.json"],
     "loading it could run code"),
    ("checkpoint-code-resume", ["retrain", "--resume", "{evil.pt}"], "could run code"),
    ("checkpoint-code-pickle", ["info", "{evil_pickle.pt}"], "could run code"),
    ("checkpoint-garbage", ["info", "{garbage.pt}"], "cannot load checkpoint"),
    ("checkpoint-truncated", ["evaluate", "{truncated.pt}", "--out", "{out}/report.json"],
     "cannot load checkpoint"),
    ("checkpoint-missing", ["evaluate", "{nowhere.pt}", "--out", "{out}/report.json"],
     "does not exist"),
    # -- data files and output locations (passed before issue 10)
    ("data-cifar-garbage", ["search", "--dataset", "cifar10", "--data-root", "{cifar}",
                            "--device", "cpu", "--quiet"], "cannot read CIFAR batch file"),
    ("data-cifar-code", ["search", "--dataset", "cifar10", "--data-root", "{cifar_code}",
                         "--device", "cpu", "--quiet"], "refusing to load global"),
    ("data-svhn-missing", ["search", "--dataset", "svhn", "--data-root", "{nowhere}",
                           "--device", "cpu", "--quiet"], "train_32x32.mat is missing"),
    ("out-under-a-file", [*SEARCH, "--out", "{model.pt}/run"], "is not writable"),
    # -- values out of their documented range (passed before issue 10)
    ("retrain-eps-8", [*RETRAIN, "--eps", "8"], "eps (--eps) must be in [0, 1]"),
    ("search-unknown-option", [*SEARCH, "--set", "nosuch=1"], "unknown option 'nosuch'"),
    ("search-yaml-typo", [*SEARCH, "--config", "{typo.yaml}"], "unknown option 'w_lrr'"),
    # -- config files that are not YAML text (A3)
    ("config-binary", [*SEARCH, "--config", "{binary.yaml}"], "is not UTF-8 text"),
    ("config-latin1", [*SEARCH, "--config", "{latin1.yaml}"], "is not UTF-8 text"),
    ("retrain-config-binary", [*RETRAIN, "--config", "{binary.yaml}"], "is not UTF-8 text"),
    ("config-nul", [*SEARCH, "--config", "{nul.yaml}"], "is not valid YAML"),
    ("config-deep", [*SEARCH, "--config", "{deep.yaml}"], "config file"),
    ("config-list", [*SEARCH, "--config", "{list.yaml}"], "must hold a mapping"),
    ("config-missing", [*SEARCH, "--config", "{nowhere.yaml}"], "does not exist"),
    # -- contradictory options (A4)
    ("retrain-best-by-without-eval", [*RETRAIN, "--adversarial", "pgd", "--best-by", "robust",
                                      "--eval-every", "0"], "eval_every 0"),
    # -- genotype files (A5), through info and retrain
    ("genotype-duplicate-edge", ["info", "{dup_edge.json}"],
     "uses the edge (sep_conv_3x3, 0) twice"),
    ("genotype-concat-2.7", ["info", "{concat_float.json}"], "got 2.7"),
    ("genotype-concat-string", ["info", "{concat_string.json}"], "got '2'"),
    ("genotype-index-bool", ["info", "{index_bool.json}"], "input index must be an integer"),
    ("genotype-index-float", ["info", "{index_float.json}"], "input index must be an integer"),
    ("genotype-unknown-op", ["info", "{unknown_op.json}"], "unknown operation 'conv_9x9'"),
    ("genotype-input-range", ["info", "{bad_input.json}"], "out of range"),
    ("genotype-nested", ["info", "{nested.json}"], "nested too deeply"),
    ("genotype-20000-nodes", ["info", "{many_nodes.json}"], "at most 1048576 bytes"),
    ("genotype-100-nodes", ["info", "{100_nodes.json}"], "at most 64 nodes per cell"),
    ("genotype-binary", ["info", "{binary.json}"], "not UTF-8"),
    ("genotype-not-json", ["info", "{not_json.json}"], "not valid JSON"),
    ("genotype-odd-edges", ["info", "{odd_edges.json}"], "normal cell has 1 edges"),
    ("genotype-unknown-name", ["info", "NO_SUCH_GENOTYPE"], "neither a file, a named"),
    ("retrain-genotype-duplicate-edge",
     ["retrain", "{dup_edge.json}", "--dataset", "digits", "--device", "cpu", "--quiet"],
     "twice"),
    ("retrain-genotype-nested",
     ["retrain", "{nested.json}", "--dataset", "digits", "--device", "cpu", "--quiet"],
     "nested too deeply"),
]


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    """The corpus files, and a small valid model checkpoint for ``evaluate``."""
    from robustnas.space.darts.catalogue import GENOTYPES
    from robustnas.space.darts.network import Network
    from robustnas.space.models import model_payload

    root = tmp_path_factory.mktemp("corpus")
    for name, content in FILES.items():
        path = root / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    net = Network(GENOTYPES.get("DARTS_V2"), C=4, num_classes=10, layers=3, in_channels=1,
                  mean=(0.3,), std=(0.37,))
    atomic_torch_save({"model": model_payload(net),
                       "dataset": {"name": "digits", "root": None, "options": {}}},
                      root / "model.pt")
    for name, content in (("cifar", b"garbage" * 100),
                          ("cifar_code", pickle.dumps({b"data": _RunsCode()}, protocol=2))):
        batches = root / name / "cifar-10-batches-py"
        batches.mkdir(parents=True)
        for part in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4",
                     "data_batch_5", "test_batch", "batches.meta"):
            (batches / part).write_bytes(content)
    whole = (root / "model.pt").read_bytes()
    (root / "truncated.pt").write_bytes(whole[: len(whole) // 2])
    (root / "garbage.pt").write_bytes(b"not a checkpoint at all\n")
    # A pickle whose loading would run a shell command (it is only written here, never run).
    torch.save({"model": _RunsCode()}, root / "evil.pt")
    (root / "evil_pickle.pt").write_bytes(pickle.dumps({"model": _RunsCode()}))
    return root


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


def _run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse errors
        return int(exc.code)


def _expand(argv: list[str], files: Path, out: Path) -> list[str]:
    """``{out}`` is the run directory, ``{name}`` the corpus file ``name``."""
    def one(match: re.Match) -> str:
        return str(out) if match[1] == "out" else str(files / match[1])
    return [re.sub(r"\{([^{}]+)\}", one, a) if not a.startswith("dataset_options=") else a
            for a in argv]


def assert_one_line_error(code: int, err: str, expected: str, status: int = 2) -> None:
    lines = err.strip().splitlines()
    assert code == status, err
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    assert expected in lines[0], lines[0]


@pytest.mark.parametrize("argv,expected", [(c[1], c[2]) for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_leaves_nothing(argv, expected, corpus_dir, tmp_path,
                                                   capsys):
    out = tmp_path / "run"
    args = _expand(argv, corpus_dir, out)
    if args[0] in ("search", "retrain") and "--out" not in args:
        args += ["--out", str(out)]
    code = _run(args)
    assert_one_line_error(code, capsys.readouterr().err, expected)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # nothing half-written
    if args[0] in ("search", "retrain"):
        assert not out.exists()


# -- a full disk (A6) ---------------------------------------------------------------------------
class _FullDisk:
    """Makes every write of a temporary file whose name contains ``target`` fail with ENOSPC,
    from the ``allowed``-th such write on (0: the first), as a full file system would."""

    def __init__(self, monkeypatch, target: str, allowed: int = 0) -> None:
        self.target, self.allowed, self.opened = target, allowed, 0
        real = os.fdopen
        disk = self

        class Failing:
            def __init__(self, handle):
                self.handle = handle

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.handle.close()

            def write(self, data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            def __getattr__(self, name):
                return getattr(self.handle, name)

        def fdopen(fd, *args, **kwargs):
            handle = real(fd, *args, **kwargs)
            name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
            if disk.target in name and name.endswith(".tmp"):
                disk.opened += 1
                if disk.opened > disk.allowed:
                    return Failing(handle)
            return handle

        monkeypatch.setattr(os, "fdopen", fdopen)


def _tiny_retrain(out: Path) -> list[str]:
    return [*RETRAIN, "--batch-size", "16", "--epochs", "2", "--eval-n", "24", "--eval-steps",
            "1", "--cutout", "2", "--checkpoint-every", "2", "--set", "max_steps_per_epoch=4",
            "--set", "eval_batch_size=24", "--out", str(out)]


def test_full_disk_during_retraining_keeps_last_checkpoint_and_resumes(tmp_path, monkeypatch,
                                                                       capsys):
    out = tmp_path / "run"
    disk = _FullDisk(monkeypatch, "last.pt", allowed=1)  # the 2nd last.pt write fails
    code = main(_tiny_retrain(out))
    err = capsys.readouterr().err
    assert_one_line_error(code, err, f"disk full: cannot write {out / 'last.pt'}")
    assert disk.opened == 2
    state = load_checkpoint(out / "last.pt")  # the previous checkpoint, intact
    assert (state["epoch"], state["step"]) == (0, 2)
    assert not list(out.glob(".*.tmp"))
    monkeypatch.undo()  # space was freed
    assert main(["retrain", "--resume", str(out), "--quiet"]) == 0
    assert load_checkpoint(out / "last.pt")["epoch"] == 2


def test_full_disk_when_a_search_starts(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    _FullDisk(monkeypatch, "")  # nothing can be written
    args = [*SEARCH, "--set", "dataset_options={n_train: 64, n_test: 16}", "--epochs", "1",
            "--set", "max_steps_per_epoch=1", "--set", "draw_every=0", "--out", str(out)]
    code = main(args)
    assert_one_line_error(code, capsys.readouterr().err, "disk full: cannot write")
    assert not list(tmp_path.rglob("*.tmp"))
    assert not (out / "checkpoint.pt").exists() and not (out / "genotype.json").exists()
    monkeypatch.undo()  # space was freed: --resume starts the run from scratch
    assert main([*args, "--resume"]) == 0
    assert (out / "genotype.json").exists()


def test_eval_every_0_trains_without_best_pt_and_says_so(tmp_path, capsys):
    out = tmp_path / "run"
    code = main([*RETRAIN, "--batch-size", "16", "--epochs", "1", "--cutout", "2",
                 "--adversarial", "pgd", "--steps", "1", "--eval-every", "0", "--set",
                 "max_steps_per_epoch=1", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "no best.pt is written" in captured.err
    assert (out / "last.pt").exists() and not (out / "best.pt").exists()
    assert "best" not in captured.out


def test_a_refused_evaluation_creates_no_output_directory(tmp_path, capsys):
    """A refused evaluation leaves no empty report directory behind."""
    out = tmp_path / "new" / "sub" / "report.json"
    status = main(["evaluate", str(tmp_path / "missing.pt"), "--out", str(out)])
    assert status == 2
    assert not (tmp_path / "new").exists()
