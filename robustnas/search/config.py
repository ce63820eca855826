"""Options of a search run (defaults follow DARTS; see REFERENCE.md section 1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from robustnas.errors import UsageError
from robustnas.options import CHANGEABLE, FIXED, THREADS_HELP, check_values, option
from robustnas.search.alpha_objective import ALPHA_OBJECTIVES
from robustnas.search.weight_objective import W_OBJECTIVES, check_weight_objective
from robustnas.space.spaces import DEFAULT_SPACE


@dataclass
class SearchConfig:
    """Every option of ``robustnas search``; YAML keys and ``--set`` names are these fields.

    Each field says whether a resumed search may change it (``resume=``: see
    :mod:`robustnas.resume`), and carries its help, allowed values and flag, from which
    ``robustnas search``'s options are generated (``flag=""``: ``--set`` only).
    """

    # data
    dataset: str = option(
        "cifar10", resume=FIXED,
        help="cifar10, cifar100, svhn, digits, synthetic, or your own: imagefolder "
             "(--data-root DIR of class folders) or npz (--data-root FILE.npz)")
    data_root: str = option("data", resume=CHANGEABLE, metavar="DIR",
                            help="dataset directory (npz: the .npz file)")
    download: bool = option(False, resume=CHANGEABLE,
                            help="download the dataset with torchvision if it is missing")
    dataset_options: dict[str, Any] = option(
        default_factory=dict, resume=FIXED, flag="",
        help="the dataset's own options, a mapping (e.g. {n_train: 64} for synthetic)")
    train_portion: float = option(
        0.5, resume=FIXED, flag="",
        help="share of the training set the weights train on, in (0, 1); α trains on the "
             "rest")
    augment: bool = option(True, resume=FIXED, flag="",
                           help="augment the training batches (random crop and flip)")
    # schedule
    epochs: int = option(50, resume=FIXED, low=1, help="search epochs")
    batch_size: int = option(64, resume=FIXED, low=1,
                             help="global batch size (over all processes)")
    seed: int = option(0, resume=FIXED, help="random seed")
    warmup_epochs: int = option(0, resume=FIXED,
                                help="epochs of weight training before α moves")
    # supernet
    # search space (robustnas.space.spaces: `robustnas info --spaces`); a checkpoint holds
    # one space's supernet, so the space cannot change on resume
    space: str = option(DEFAULT_SPACE, resume=FIXED,
                        help="search space (robustnas info --spaces lists them)")
    bench_root: str = option(
        "", resume=CHANGEABLE, flag="",
        help="directory of the space's robustness table, to look the found cell up in "
             "(empty: no lookup)")
    bench_dataset: str = option("cifar10", resume=CHANGEABLE, flag="",
                                help="the table's dataset for that lookup")
    C: int = option(16, resume=FIXED, low=1, flag="--channels",
                    help="initial channels of the supernet")
    layers: int = option(8, resume=FIXED, low=1,
                         help="number of cells (what a space counts: robustnas info --spaces)")
    steps: int = option(4, resume=FIXED, low=1, flag="",
                        help="intermediate nodes of a cell")
    # robustnas/space/relaxations; a checkpoint holds one relaxation's parameters (PC-DARTS'
    # β and partial-channel edges), so neither can change on resume
    relaxation: str = option(
        "darts", resume=FIXED, metavar="NAME",
        help="how the supernet is relaxed: darts (softmax mixture), pc-darts (partial "
             "channels, edge normalisation) or gdas (Gumbel-softmax, one operation per edge)")
    relaxation_options: dict[str, Any] = option(
        default_factory=dict, resume=FIXED, flag="",
        help="the relaxation's options, a mapping (pc-darts: k, edge_normalization; gdas: "
             "tau_max, tau_min), e.g. --set relaxation_options={k: 8}")
    # bilevel optimisation (the optimiser settings are re-applied after a resume loads the
    # optimisers' state: robustnas.search.resume.apply_optimizer_settings)
    order: int = option(1, resume=FIXED, choices=(1, 2),
                        help="1: first order, 2: unrolled")
    w_lr: float = option(0.025, resume=CHANGEABLE, low=0, flag="",
                         help="SGD learning rate of the weights (cosine schedule)")
    w_lr_min: float = option(0.001, resume=CHANGEABLE, flag="",
                             help="the weights' learning rate at the end of the schedule")
    w_momentum: float = option(0.9, resume=CHANGEABLE, flag="",
                               help="SGD momentum of the weights")
    w_weight_decay: float = option(3e-4, resume=CHANGEABLE, flag="",
                                   help="weight decay of the weights")
    grad_clip: float = option(5.0, resume=CHANGEABLE, low=0, flag="",
                              help="gradient-norm clip of the weight step (0: off)")
    skip_nonfinite: bool = option(
        False, resume=CHANGEABLE, flag="",
        help="skip a step whose loss or gradient is not finite instead of stopping")
    arch_lr: float = option(3e-4, resume=CHANGEABLE, low=0, flag="",
                            help="Adam learning rate of α")
    arch_beta1: float = option(0.5, resume=CHANGEABLE, flag="", help="Adam β1 of α")
    arch_beta2: float = option(0.999, resume=CHANGEABLE, flag="", help="Adam β2 of α")
    arch_weight_decay: float = option(1e-3, resume=CHANGEABLE, flag="",
                                      help="weight decay of α")
    # see robustnas/search/architect.py for the finite difference's measured error
    fd_radius: float = option(
        0.01, resume=CHANGEABLE, flag="",
        help="order 2: finite-difference radius r of the implicit term, ε = r/‖v‖ "
             "(DARTS: 0.01)")
    regularizer: str = option(
        "none", resume=FIXED, metavar="SPEC",
        help="none, advrush, lipschitz, or weighted terms such as advrush:1,lipschitz:0.5")
    regularizer_options: dict[str, Any] = option(
        default_factory=dict, resume=FIXED, flag="",
        help="each regulariser's options, {name: {key: value}} (on the command line: "
             "--reg-opt NAME.KEY=VALUE)")
    # adversarial supernet training: the weight step on adversarial examples of the training
    # batch (robustnas/search/weight_objective.py); the α step's batch: alpha_objective
    # (robustnas/search/alpha_objective.py)
    w_objective: str = option(
        "none", resume=FIXED, choices=W_OBJECTIVES, metavar="NAME",
        help="the weight step's objective: none (clean, DARTS), or a retraining objective "
             "(pgd, trades, fgsm-rs) on adversarial examples of the training batch")
    alpha_objective: str = option(
        "clean", resume=FIXED, choices=ALPHA_OBJECTIVES, metavar="NAME",
        help="the α step's validation batch: clean (DARTS) or adversarial (PGD examples "
             "with the weight step's attack settings, w_objective_options)")
    w_objective_options: dict[str, Any] = option(
        default_factory=dict, resume=FIXED, flag="",
        help="its attack, a mapping (eps, steps, step_size, random_start, attack_bn, "
             "trades_beta; unset: the retraining objective's defaults)")
    # monitoring and guards
    eval_hessian_every: int = option(
        0, resume=CHANGEABLE, flag="",
        help="epochs between measurements of the top Hessian eigenvalues (input, and "
             "validation loss w.r.t. α; 0: never)")
    hessian_iters: int = option(10, resume=CHANGEABLE, flag="",
                                help="power iterations of those eigenvalues")
    collapse_max_skips: int | None = option(
        None, resume=CHANGEABLE, flag="",
        help="collapse guard: most skip connections of the derived normal cell (none: off)")
    collapse_eigen_ratio: float | None = option(
        None, resume=CHANGEABLE, flag="",
        help="collapse guard: largest growth of the α-Hessian eigenvalue over 5 epochs "
             "(RobustDARTS; none: off; needs eval_hessian_every)")
    collapse_action: str = option("warn", resume=CHANGEABLE, choices=("warn", "stop"),
                                  flag="", help="what a collapse guard that fires does")
    draw_every: int = option(1, resume=CHANGEABLE, flag="",
                             help="epochs between cell pictures (0: none)")
    # execution
    device: str = option("auto", resume=CHANGEABLE, help="auto, cpu, cuda, cuda:N")
    out: str = option("runs/search", resume=CHANGEABLE, metavar="DIR",
                      help="run directory")
    amp: bool = option(False, resume=CHANGEABLE, help="bf16 autocast (CUDA)")
    # Why float64: on the CPU, float32 convolutions round differently with 1 and 2 threads
    # and the weight steps amplify that (1e-7 after one step, 2e-2 after 11: BENCHMARKS.md,
    # "Quickstart stability"), so the derived cell followed the thread count. In float64
    # the thread counts measured agree bit for bit, at about twice the CPU time.
    precision: str = option(
        "float32", resume=FIXED, choices=("float32", "float64"),
        help="floating type of the supernet, α and the batches (float64: a cell that does "
             "not follow the CPU thread count, about 2x slower on the CPU)")
    channels_last: bool = option(False, resume=CHANGEABLE,
                                 help="channels-last memory format")
    max_steps_per_epoch: int = option(
        0, resume=CHANGEABLE, flag="",
        help="> 0: cap an epoch's steps and its end-of-epoch validation batches (smoke "
             "runs)")
    threads: int = option(0, resume=CHANGEABLE, metavar="N", help=THREADS_HELP)
    checkpoint_every: int = option(
        0, resume=CHANGEABLE, low=0, metavar="N",
        help="also checkpoint every N steps within an epoch (0: at epoch ends only)")
    # see robustnas/search/parallel.py
    sync_bn: bool = option(
        True, resume=CHANGEABLE, flag="",
        help="under torchrun: batch norm over the global batch (true) or each process's "
             "shard (false)")
    # a resumed run may use another number of processes (the global batch stays the same)
    world_size: int = option(
        1, resume=CHANGEABLE, flag="",
        help="recorded, not an input: the number of processes the run used (torchrun)")

    def validate(self) -> None:
        """Reject values that cannot work, with one clear message."""
        from robustnas.space.protocol import SUPERNET, require
        from robustnas.space.spaces import get_space

        space = get_space(self.space)  # unknown space: UsageError listing the choices
        require(space, SUPERNET, "search")
        check_values(self)  # the choices and ranges the fields declare
        if not 0.0 < self.fd_radius < float("inf"):
            raise UsageError(f"fd_radius must be a positive number (DARTS: 0.01), got "
                             f"{self.fd_radius}")
        if not 0.0 < self.train_portion < 1.0:
            raise UsageError(f"train_portion must be in (0, 1), got {self.train_portion}")
        space.check_sizes(self.C, self.layers, "search")
        self.check_relaxation()
        check_weight_objective(self.w_objective, self.w_objective_options, self.order,
                               self.alpha_objective)
        if self.amp and self.precision == "float64":
            raise UsageError("amp (bf16 autocast) and precision float64 exclude each other: "
                             "choose one")
        if self.warmup_epochs < 0 or self.warmup_epochs > self.epochs:
            raise UsageError(f"warmup_epochs must be in 0..epochs, got {self.warmup_epochs}")
        if self.collapse_eigen_ratio is not None and self.eval_hessian_every <= 0:
            raise UsageError("collapse_eigen_ratio needs eval_hessian_every > 0 (the guard "
                             "compares Hessian eigenvalues measured every few epochs)")

    def check_relaxation(self) -> None:
        """Refuse an unknown relaxation, bad options, and settings that cannot work with it
        (e.g. second order with GDAS), in one line
        (:meth:`robustnas.space.relaxations.Relaxation.check_search`)."""
        from robustnas.space.relaxations import make_relaxation

        relaxation = make_relaxation(self.relaxation, self.relaxation_options)
        names = [item.partition(":")[0].strip() for item in str(self.regularizer).split(",")]
        relaxation.check_search(order=self.order, regularizers=[n for n in names if n],
                                C=self.C)
