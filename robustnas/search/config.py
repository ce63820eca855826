"""Options of a search run (defaults follow DARTS; see REFERENCE.md section 1)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from robustnas.errors import UsageError
from robustnas.space.spaces import DEFAULT_SPACE


@dataclass
class SearchConfig:
    """Every option of ``robustnas search``; YAML keys and ``--set`` names are these fields."""

    # data
    dataset: str = "cifar10"
    data_root: str = "data"
    download: bool = False
    dataset_options: dict[str, Any] = field(default_factory=dict)
    train_portion: float = 0.5
    augment: bool = True
    # schedule
    epochs: int = 50
    batch_size: int = 64
    seed: int = 0
    warmup_epochs: int = 0
    # supernet
    space: str = DEFAULT_SPACE  # search space (robustnas.space.spaces: `robustnas info --spaces`)
    bench_root: str = ""  # look the found cell up in this space's robustness table at the end
    bench_dataset: str = "cifar10"  # ... for this table dataset
    C: int = 16
    layers: int = 8  # cells (what a space's layers count: its layers_meaning)
    steps: int = 4
    # bilevel optimisation
    order: int = 1
    w_lr: float = 0.025
    w_lr_min: float = 0.001
    w_momentum: float = 0.9
    w_weight_decay: float = 3e-4
    grad_clip: float = 5.0
    skip_nonfinite: bool = False  # skip steps with a non-finite loss/gradient
    arch_lr: float = 3e-4
    arch_beta1: float = 0.5
    arch_beta2: float = 0.999
    arch_weight_decay: float = 1e-3
    # order 2: finite-difference radius r of the implicit term, ε = r/‖v‖ (DARTS: 0.01;
    # see robustnas/search/architect.py for its measured error)
    fd_radius: float = 0.01
    # robustness regularisers: "none", "advrush", "advrush:1,lipschitz:0.5"
    regularizer: str = "none"
    regularizer_options: dict[str, Any] = field(default_factory=dict)
    # monitoring and guards
    eval_hessian_every: int = 0
    hessian_iters: int = 10
    collapse_max_skips: int | None = None
    collapse_eigen_ratio: float | None = None
    collapse_action: str = "warn"
    draw_every: int = 1
    # execution
    device: str = "auto"
    out: str = "runs/search"
    amp: bool = False
    channels_last: bool = False
    # > 0: cap an epoch's steps and its end-of-epoch validation batches (smoke runs)
    max_steps_per_epoch: int = 0
    threads: int = 0  # CPU threads (0: OMP_NUM_THREADS or min(cores, 4); runtime.set_threads)
    checkpoint_every: int = 0  # steps between mid-epoch checkpoints (0: epoch ends only)
    # torchrun: batch norm over the global batch (true) or each process's shard (false);
    # see robustnas/search/parallel.py
    sync_bn: bool = True
    # recorded, not an input: the number of processes the run used (torchrun's WORLD_SIZE)
    world_size: int = 1

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
