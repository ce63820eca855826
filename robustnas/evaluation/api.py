"""``evaluate(...)``: the notebook-friendly entry point behind ``robustnas evaluate``."""

from __future__ import annotations

import datetime as _dt
import platform
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robustnas.attacks import Attack, parse_attack_list
from robustnas.attacks.standard import PGD, Clean
from robustnas.errors import UsageError
from robustnas.evaluation import sanity as checks
from robustnas.evaluation.config import EvaluateConfig, evaluation_settings
from robustnas.evaluation.corruptions import CORRUPTIONS, corruption_files
from robustnas.evaluation.loading import (
    Candidate,
    check_compatible,
    describe_model,
    load_candidate,
    load_test_data,
    parse_eps_list,
    unique_labels,
)
from robustnas.evaluation.report import Report
from robustnas.evaluation.runner import ModelEvaluator
from robustnas.evaluation.subject import describe_subject, require_evaluable
from robustnas.runtime import resolve_device, set_threads

ModelLike = str | Path | nn.Module | Candidate


def evaluate(models: ModelLike | Sequence[ModelLike], *,
             config: EvaluateConfig | None = None, data: Any = None, progress: bool = True,
             announce: Callable[[str], None] | None = None, **settings: Any) -> Report:
    """Evaluate checkpoints (paths) or models against attacks, measures and corruptions.

    The settings are an :class:`~robustnas.evaluation.config.EvaluateConfig` (``config``,
    default: its defaults) and/or its fields as keywords, which take precedence, e.g.
    ``evaluate(paths, attacks="clean,pgd20", eps="0.05,0.1", n=500)`` (each is documented on
    its field; ``robustnas evaluate --help`` lists them):

    * attacks: comma list or names: ``clean``, ``fgsm``, ``pgd<k>``, ``cw<k>``,
      ``autoattack``, ``apgd-ce``, ``apgd-t``, ``fab-t``, ``square``;
    * eps: L∞ budgets in [0, 1] pixel units (``"1/255,2/255,8/255"``), evaluated together;
    * n: first ``n`` test images (default all); batch_size, device, seed: as named;
    * restarts: random restarts of PGD/CW attacks;
    * measures: also compute Jacobian norm, Hessian eigenvalue (on the first ``measure_n``
      images, ``hessian_iters`` power iterations) and the Lipschitz bound;
    * corruptions: also evaluate common corruptions, from ``corruptions_dir`` (or
      ``<data_root>/CIFAR-10-C`` / ``CIFAR-100-C`` when present) or generated;
    * dataset, data_root, dataset_options: override the dataset a checkpoint recorded
      (required for in-memory models unless ``data`` is given);
    * sanity: run the gradient-masking checks (extra PGD runs on ``sanity_n`` images, PGD
      at ``large_eps``);
    * labels: names for the models in the report;
    * run_dir: also write the figures to TensorBoard under ``run_dir/<label>``;
    * aa_steps, aa_queries: AutoAttack iterations/Square queries (defaults 100/5000);
    * supernet: allow evaluating a supernet (a search checkpoint); without it a supernet is
      refused with a pointer to ``robustnas derive`` + ``robustnas retrain``;
    * threads: CPU threads for PyTorch (0: the default, as for search and retrain).

    Args:
        models: a checkpoint path, ``nn.Module`` or :class:`Candidate`, or a list of them
            (``evaluation.ensemble.ensemble_candidates(paths)`` gives a post-hoc ensemble
            followed by its members).
        config: the settings (see above).
        data: an ``ImageDataset`` to use for every model (its test split).
        progress: tqdm bar on stderr.
        announce: called with one line per model saying what is evaluated (the CLI prints
            it on stderr).
        settings: fields of :class:`~robustnas.evaluation.config.EvaluateConfig`.

    Returns:
        A :class:`Report` (``report.save("report.json")`` writes JSON and Markdown).
    """
    cfg = evaluation_settings(config, settings)
    attack_list = parse_attack_list(cfg.attacks, restarts=cfg.restarts, aa_steps=cfg.aa_steps,
                                    aa_queries=cfg.aa_queries, seed=cfg.seed)
    eps_list = parse_eps_list(cfg.eps)
    set_threads(cfg.threads)
    dev = resolve_device(cfg.device)
    candidates = _candidates(models, cfg.labels)
    for cand in candidates:
        require_evaluable(cand, cfg.supernet)
    cache: dict = {}
    n = cfg.n
    report = Report(settings={
        "attacks": [a.name for a in attack_list], "attack_settings": [a.describe()
                                                                      for a in attack_list],
        "eps": [t for _, t in eps_list], "eps_values": [v for v, _ in eps_list],
        "n": n, "n_text": "all" if n is None else str(n), "batch_size": cfg.batch_size,
        "seed": cfg.seed, "restarts": cfg.restarts, "measures": cfg.measures,
        "corruptions": cfg.corruptions, "sanity": cfg.sanity, "sanity_n": cfg.sanity_n,
        "large_eps": cfg.large_eps, "supernet": cfg.supernet, "norm": "linf",
        "accuracy_unit": "percent"},
        environment=_environment(dev), created=_dt.datetime.now().astimezone().isoformat())
    writer_root = Path(cfg.run_dir) if cfg.run_dir is not None else None
    for cand in candidates:
        test = data if data is not None else load_test_data(
            _dataset_spec(cand, cfg.dataset, cfg.data_root, cfg.dataset_options), cache)
        check_compatible(cand.label, cand.model, test)
        if announce is not None:
            count = len(test.test_y) if n is None else min(n, len(test.test_y))
            announce(describe_subject(cand, test.name, count))
        report.models.append(_evaluate_one(
            cand, test, attack_list, eps_list, dev, n=n, batch_size=cfg.batch_size,
            seed=cfg.seed, restarts=cfg.restarts, measures=cfg.measures,
            measure_n=cfg.measure_n, hessian_iters=cfg.hessian_iters,
            corruptions=cfg.corruptions,
            corruptions_dir=_corruption_dir(cfg.corruptions, cfg.corruptions_dir, test,
                                            cfg.data_root, cand),
            sanity=cfg.sanity, sanity_n=cfg.sanity_n, large_eps=cfg.large_eps,
            progress=progress))
        if writer_root is not None:
            _tensorboard(writer_root / cand.label.replace("/", "_"), report.models[-1])
    return report


def _candidates(models: ModelLike | Sequence[ModelLike],
                labels: Sequence[str] | None) -> list[Candidate]:
    items = [models] if isinstance(models, (str, Path, nn.Module, Candidate)) else list(models)
    if not items:
        raise UsageError("no checkpoint given")
    if labels is not None and len(labels) != len(items):
        raise UsageError(f"{len(labels)} labels for {len(items)} models")
    out = []
    for i, item in enumerate(items):
        if isinstance(item, nn.Module):
            out.append(Candidate(f"model{i + 1}", item))
        elif isinstance(item, Candidate):  # e.g. from evaluation.ensemble
            out.append(item)
        else:
            out.append(load_candidate(item))
    names = unique_labels([c.label for c in out], [c.checkpoint for c in out])
    for c, name, i in zip(out, names, range(len(out))):
        c.label = labels[i] if labels is not None else name
    return out


def _dataset_spec(cand: Candidate, name: str | None, root: str | Path | None,
                  options: dict[str, Any] | None) -> dict[str, Any]:
    recorded = dict(cand.dataset or {})
    if name is None and not recorded:
        raise UsageError(f"{cand.label}: the checkpoint does not record its dataset; "
                         "pass --dataset NAME (and --data-root DIR)")
    spec = {"name": name or recorded["name"],
            "root": str(root) if root is not None else recorded.get("root"),
            "options": options if options is not None else (
                recorded.get("options") if name in (None, recorded.get("name")) else None)}
    return spec


def _corruption_dir(enabled: bool, given: str | Path | None, test: Any,
                    root: str | Path | None, cand: Candidate) -> Path | None:
    if not enabled:
        return None
    if given is not None:
        return Path(given)
    folder = {"cifar10": "CIFAR-10-C", "cifar100": "CIFAR-100-C"}.get(test.name)
    base = root if root is not None else (cand.dataset or {}).get("root") or "data"
    if folder and (Path(base) / folder / "labels.npy").is_file():
        return Path(base) / folder
    return None


def _evaluate_one(cand: Candidate, test: Any, attack_list: list[Attack],
                  eps_list: list[tuple[float, str]], dev: torch.device, *, n: int | None,
                  batch_size: int, seed: int, restarts: int, measures: bool, measure_n: int,
                  hessian_iters: int, corruptions: bool, corruptions_dir: Path | None,
                  sanity: bool, sanity_n: int, large_eps: float,
                  progress: bool) -> dict[str, Any]:
    import time

    from tqdm.auto import tqdm

    start = time.perf_counter()
    x, y = test.test_x, test.test_y
    if n is not None:
        x, y = x[:n], y[:n]
    count = len(y)
    model = cand.model.to(dev).eval()
    white = [a for a in attack_list if a.white_box and not isinstance(a, Clean)]
    run_sanity = sanity and bool(white)
    n_corruptions = (len(corruption_files(corruptions_dir)) if corruptions_dir is not None
                     else len(CORRUPTIONS)) if corruptions else 0
    total = planned_images(attack_list, len(eps_list), count,
                           min(sanity_n, count) if run_sanity else 0,
                           min(measure_n, count) if measures else 0, n_corruptions)
    bar = tqdm(total=total, desc=cand.label, unit=" img×attack", unit_scale=False,
               file=sys.stderr, disable=not progress, dynamic_ncols=True, leave=True)

    def tick(images: int, stage: str) -> None:
        bar.set_postfix_str(stage, refresh=False)
        bar.update(images)

    ev = ModelEvaluator(model, x, y, device=dev, batch_size=batch_size, seed=seed, tick=tick)
    try:
        clean, rows, per_sample = ev.attacks(attack_list, eps_list)
        result: dict[str, Any] = {"label": cand.label, "checkpoint": cand.checkpoint,
                                  **describe_model(cand.model), "dataset": test.name,
                                  "classes": int(test.num_classes),
                                  "n": count, "test_size": len(test.test_y),
                                  "forward_passes": int(getattr(cand.model, "forward_passes", 1)),
                                  "clean": clean, "rows": rows}
        if cand.metadata:
            result["metadata"] = cand.metadata
        found = []
        if run_sanity:
            found = ev.sanity(attack_list, rows, per_sample, sanity_n, large_eps, restarts)
        found += checks.autoattack_checks(ev.library)
        if ev.library:
            result["autoattack"] = list(ev.library.values())
        if measures:
            result["measures"] = ev.measures(measure_n, hessian_iters)
        if corruptions:
            result["corruptions"] = ev.corruptions(corruptions_dir)
        if bar.n != bar.total:  # e.g. corruption files holding fewer images than --n
            bar.total = bar.n
            bar.refresh()
    finally:
        bar.close()
    result["sanity"] = found
    result["warnings"] = [c["detail"] for c in found if not c["passed"]]
    result["seconds"] = round(time.perf_counter() - start, 3)
    return result


def planned_images(attack_list: list[Attack], n_eps: int, count: int, sanity_count: int,
                   measure_count: int, n_corruptions: int) -> int:
    """Total of the progress bar: images × attack runs (clean pass, every attack at every ε,
    the sanity checks' extra PGD runs, the measures, every corruption × severity)."""
    attacks = [a for a in attack_list if not isinstance(a, Clean)]
    total = count + len(attacks) * n_eps * count + measure_count + n_corruptions * 5 * count
    if sanity_count:
        cached = any(isinstance(a, PGD) and a.loss == "ce" for a in attacks)
        total += (2 if cached else 3) * sanity_count  # large ε, (base), 5× steps
    return total


def _environment(dev: torch.device) -> dict[str, Any]:
    from robustnas import __version__
    from robustnas.attacks.autoattack import autoattack_status

    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() \
        or platform.machine()
    return {"robustnas": __version__, "torch": torch.__version__,
            "python": platform.python_version(), "device": str(dev),
            "device_name": name, "threads": torch.get_num_threads(),
            "autoattack_library": autoattack_status()[1]}


def eps_step_scale(eps: list[float]) -> tuple[int, str]:
    """``(scale, unit)`` such that every ``ε × scale`` is an integer TensorBoard step: 255
    (ε in 1/255) when all are multiples of 1/255, else the first power of ten that works
    (up to 10^6; finer ε are rounded there)."""
    def integral(scale: int) -> bool:
        return all(abs(e * scale - round(e * scale)) < 1e-6 for e in eps)

    if integral(255):
        return 255, "1/255"
    for power in range(7):
        if integral(10 ** power) or power == 6:
            return 10 ** power, "1" if power == 0 else f"1/{10 ** power}"
    raise AssertionError("unreachable")


def _tensorboard(directory: Path, result: dict[str, Any]) -> None:
    from torch.utils.tensorboard import SummaryWriter

    rows = result["rows"]
    scale, unit = eps_step_scale([r["eps"] for r in rows])
    with SummaryWriter(str(directory)) as writer:
        writer.add_scalar("eval/clean", result["clean"], 0)
        # TensorBoard steps are integers: ε is logged in a unit that makes it one (1/255 for
        # 8/255, 1/1000 for 0.05), never as the row's position, and the unit is written down.
        writer.add_text("eval/eps_axis", f"step = ε × {scale} (ε in units of {unit})", 0)
        for r in rows:
            step = round(r["eps"] * scale)
            for name, acc in r["attacks"].items():
                writer.add_scalar(f"eval/{name}", acc, step)
            for name, acc in r.get("components", {}).items():
                writer.add_scalar(f"eval/{name}", acc, step)
            writer.add_scalar("eval/worst_case", r["worst_case"], step)
            writer.add_scalar("eval/hrs", r["hrs"], step)
        meas = result.get("measures")
        if meas:
            writer.add_scalar("measures/jacobian_frobenius", meas["jacobian_frobenius"]["mean"], 0)
            writer.add_scalar("measures/hessian_max_eigenvalue",
                              meas["hessian_max_eigenvalue"]["mean"], 0)
            if meas.get("lipschitz_log10") is not None:
                writer.add_scalar("measures/lipschitz_log10", meas["lipschitz_log10"], 0)
        if result.get("corruptions"):
            writer.add_scalar("corruptions/mean", result["corruptions"]["mean"], 0)
        lines = [f"{r['eps_text']}: " + ", ".join(f"{k} {v:.2f}" for k, v in r["attacks"].items())
                 + f", worst {r['worst_case']:.2f}" for r in rows]
        writer.add_text("eval/summary", "  \n".join(lines), 0)
