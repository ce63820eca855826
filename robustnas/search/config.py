"""Options of a search run (defaults follow DARTS; see REFERENCE.md section 1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from robustnas.errors import UsageError
from robustnas.options import CHANGEABLE, FIXED, option
from robustnas.space.spaces import DEFAULT_SPACE


@dataclass
class SearchConfig:
    """Every option of ``robustnas search``; YAML keys and ``--set`` names are these fields.

    Each field says whether a resumed search may change it (``resume=``: see
    :mod:`robustnas.resume`).
    """

    # data
    dataset: str = option("cifar10", resume=FIXED)
    data_root: str = option("data", resume=CHANGEABLE)
    download: bool = option(False, resume=CHANGEABLE)
    dataset_options: dict[str, Any] = option(default_factory=dict, resume=FIXED)
    train_portion: float = option(0.5, resume=FIXED)
    augment: bool = option(True, resume=FIXED)
    # schedule
    epochs: int = option(50, resume=FIXED)
    batch_size: int = option(64, resume=FIXED)
    seed: int = option(0, resume=FIXED)
    warmup_epochs: int = option(0, resume=FIXED)
    # supernet
    # search space (robustnas.space.spaces: `robustnas info --spaces`); a checkpoint holds
    # one space's supernet, so the space cannot change on resume
    space: str = option(DEFAULT_SPACE, resume=FIXED)
    # look the found cell up in this space's robustness table at the end
    bench_root: str = option("", resume=CHANGEABLE)
    bench_dataset: str = option("cifar10", resume=CHANGEABLE)  # ... for this table dataset
    C: int = option(16, resume=FIXED)
    layers: int = option(8, resume=FIXED)  # cells (what a space's layers count: layers_meaning)
    steps: int = option(4, resume=FIXED)
    # bilevel optimisation (the optimiser settings are re-applied after a resume loads the
    # optimisers' state: robustnas.search.resume.apply_optimizer_settings)
    order: int = option(1, resume=FIXED)
    w_lr: float = option(0.025, resume=CHANGEABLE)
    w_lr_min: float = option(0.001, resume=CHANGEABLE)
    w_momentum: float = option(0.9, resume=CHANGEABLE)
    w_weight_decay: float = option(3e-4, resume=CHANGEABLE)
    grad_clip: float = option(5.0, resume=CHANGEABLE)
    # skip steps with a non-finite loss/gradient
    skip_nonfinite: bool = option(False, resume=CHANGEABLE)
    arch_lr: float = option(3e-4, resume=CHANGEABLE)
    arch_beta1: float = option(0.5, resume=CHANGEABLE)
    arch_beta2: float = option(0.999, resume=CHANGEABLE)
    arch_weight_decay: float = option(1e-3, resume=CHANGEABLE)
    # order 2: finite-difference radius r of the implicit term, ε = r/‖v‖ (DARTS: 0.01;
    # see robustnas/search/architect.py for its measured error)
    fd_radius: float = option(0.01, resume=CHANGEABLE)
    # robustness regularisers: "none", "advrush", "advrush:1,lipschitz:0.5"
    regularizer: str = option("none", resume=FIXED)
    regularizer_options: dict[str, Any] = option(default_factory=dict, resume=FIXED)
    # monitoring and guards
    eval_hessian_every: int = option(0, resume=CHANGEABLE)
    hessian_iters: int = option(10, resume=CHANGEABLE)
    collapse_max_skips: int | None = option(None, resume=CHANGEABLE)
    collapse_eigen_ratio: float | None = option(None, resume=CHANGEABLE)
    collapse_action: str = option("warn", resume=CHANGEABLE)
    draw_every: int = option(1, resume=CHANGEABLE)
    # execution
    device: str = option("auto", resume=CHANGEABLE)
    out: str = option("runs/search", resume=CHANGEABLE)
    amp: bool = option(False, resume=CHANGEABLE)
    channels_last: bool = option(False, resume=CHANGEABLE)
    # > 0: cap an epoch's steps and its end-of-epoch validation batches (smoke runs)
    max_steps_per_epoch: int = option(0, resume=CHANGEABLE)
    # CPU threads (0: OMP_NUM_THREADS or min(cores, 4); runtime.set_threads)
    threads: int = option(0, resume=CHANGEABLE)
    # steps between mid-epoch checkpoints (0: epoch ends only)
    checkpoint_every: int = option(0, resume=CHANGEABLE)
    # torchrun: batch norm over the global batch (true) or each process's shard (false);
    # see robustnas/search/parallel.py
    sync_bn: bool = option(True, resume=CHANGEABLE)
    # recorded, not an input: the number of processes the run used (torchrun's WORLD_SIZE);
    # a resumed run may use another number (the global batch stays the same)
    world_size: int = option(1, resume=CHANGEABLE)

    def validate(self) -> None:
        """Reject values that cannot work, with one clear message."""
        from robustnas.space.protocol import SUPERNET, require
        from robustnas.space.spaces import get_space

        space = get_space(self.space)  # unknown space: UsageError listing the choices
        require(space, SUPERNET, "search")
        if self.order not in (1, 2):
            raise UsageError(f"order must be 1 or 2, got {self.order}")
        if not 0.0 < self.fd_radius < float("inf"):
            raise UsageError(f"fd_radius must be a positive number (DARTS: 0.01), got "
                             f"{self.fd_radius}")
        if not 0.0 < self.train_portion < 1.0:
            raise UsageError(f"train_portion must be in (0, 1), got {self.train_portion}")
        for name in ("epochs", "batch_size", "C", "layers", "steps"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name} must be at least 1, got {getattr(self, name)}")
        space.check_sizes(self.C, self.layers, "search")
        if self.warmup_epochs < 0 or self.warmup_epochs > self.epochs:
            raise UsageError(f"warmup_epochs must be in 0..epochs, got {self.warmup_epochs}")
        if self.collapse_action not in ("warn", "stop"):
            raise UsageError(f"collapse_action must be warn or stop, got {self.collapse_action!r}")
        if self.collapse_eigen_ratio is not None and self.eval_hessian_every <= 0:
            raise UsageError("collapse_eigen_ratio needs eval_hessian_every > 0 (the guard "
                             "compares Hessian eigenvalues measured every few epochs)")
        for name in ("w_lr", "arch_lr", "grad_clip"):
            if getattr(self, name) < 0:
                raise UsageError(f"{name} must be non-negative")
        if self.checkpoint_every < 0:
            raise UsageError(f"checkpoint_every must be >= 0 (0: only at epoch ends), got "
                             f"{self.checkpoint_every}")
