"""Options of a retraining run, with per-objective defaults.

Precedence, lowest first: the dataclass default, then the chosen objective's default (for
fields whose dataclass default is ``None``: schedule, batch size, learning rate, weight
decay, drop-path, auxiliary weight, ε, attack steps and step size, ``best_by``), then the
YAML file, then the command line. A value set in YAML or on the command line is never
replaced by an objective default; the defaults are filled in when the config object is
built, so ``RetrainConfig(adversarial="pgd")`` in a notebook already holds the PGD protocol.

The cutout default depends on the image size, so it stays ``None`` ("not set") until the
dataset is known: :meth:`RetrainConfig.cutout_for` scales the objective's value, given for
32x32 images as in DARTS, to the dataset's image side (DARTS' 16 is half the side: 16 on
CIFAR-10, 4 on the 8x8 digits; see :func:`robustnas.data.augment.scaled_to_image`). The run
records the value it used in ``config.yaml``. A cutout that is set is kept as it is.

Defaults per objective (see each objective's module):

=============  =======  =====  =====  =======  ======  ======  =========  ====  =======
objective      epochs   batch  lr     sched.   wd      cutout  drop-path  aux   steps
=============  =======  =====  =====  =======  ======  ======  =========  ====  =======
none (DARTS)   600      96     0.025  cosine   3e-4    16 (*)  0.2        0.4   (eval)
pgd (AdvRush)  200      64     0.1    step     1e-4    0       0          0     7
trades         200      64     0.1    step     1e-4    0       0          0     10
fgsm-rs        30       128    0.1    cosine   5e-4    0       0          0     1
=============  =======  =====  =====  =======  ======  ======  =========  ====  =======

(*) on 32x32 images; half the image side in general (see above).

ε is 8/255 for all; the attack step is ε/4 (2/255) for pgd and trades and 1.25·ε for
fgsm-rs. ``step`` decays the learning rate by ``lr_gamma`` at ``lr_milestones`` (epoch
indices, 0-based: the decay applies from that epoch on), by default at 50% and 75% of the
epochs (distinct and after epoch 0, so a short run never decays twice at once). The
held-out PGD evaluation uses ``eval_steps`` (default 10) steps of ``eval_step_size``
(default 2.5·ε/steps, i.e. 2/255 at ε = 8/255 and 10 steps) with a random start;
the papers report PGD-20 at the end (run ``robustnas evaluate`` for that).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from robustnas.errors import UsageError
from robustnas.train.objectives import OBJECTIVES, ObjectiveSettings

LR_SCHEDULES = ("cosine", "step")
#: Objective defaults given for 32x32 images, scaled to the dataset's when it is loaded.
IMAGE_SIZED = ("cutout",)
BEST_BY = ("clean", "robust")


@dataclass
class RetrainConfig:
    """Every option of ``robustnas retrain``; YAML keys and ``--set`` names are these fields.

    Fields defaulting to ``None`` take the objective's default (see the module docstring).
    """

    # architecture
    genotype: str = ""
    C: int = 36
    layers: int = 20
    auxiliary_weight: float | None = None
    drop_path: float | None = None
    # joint ensemble (robustnas.space.ensemble): members instead of one genotype
    ensemble: list[str] = field(default_factory=list)
    ensemble_combine: str = "features"  # features (seed 000), logits or probs
    ensemble_init: str = "default"      # default, seed000 or a comma list of schemes
    # data
    dataset: str = "cifar10"
    data_root: str = "data"
    download: bool = False
    dataset_options: dict[str, Any] = field(default_factory=dict)
    augment: bool = True
    cutout: int | None = None  # None: the objective's, scaled to the images (cutout_for)
    # objective
    adversarial: str = "none"
    eps: float | None = None
    steps: int | None = None
    step_size: float | None = None
    random_start: bool = True
    trades_beta: float = 6.0
    attack_bn: str = "eval"
    # optimisation
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    lr_schedule: str | None = None
    lr_min: float = 0.0
    lr_milestones: list[int] | None = None
    lr_gamma: float = 0.1
    momentum: float = 0.9
    weight_decay: float | None = None
    grad_clip: float = 5.0
    skip_nonfinite: bool = False  # skip steps with a non-finite loss/gradient
    # held-out evaluation and model selection (robustnas.train.heldout)
    select_on: str = "val"       # "val": a split carved from training; "test": optimistic
    val_n: int | None = None     # validation images carved (None: min(1000, train/10))
    val_seed: int = 0            # seed of the validation carve (same split for any seed)
    eval_every: int = 1          # epochs between held-out evaluations (0: never)
    eval_n: int = 1000           # held-out images evaluated (0: the whole selection split)
    eval_steps: int = 10
    eval_eps: float | None = None
    eval_step_size: float | None = None
    eval_batch_size: int = 250
    best_by: str | None = None
    # execution
    seed: int = 0
    device: str = "auto"
    out: str = "runs/retrain"
    amp: bool = False
    channels_last: bool = False
    sync_bn: bool = False
    checkpoint_every: int = 200
    max_steps_per_epoch: int = 0
    threads: int = 0             # CPU threads (0: OMP_NUM_THREADS or min(cores, 4))

    def __post_init__(self) -> None:
        self.adversarial = str(self.adversarial).strip().lower().replace("_", "-")
        objective = OBJECTIVES.get(self.adversarial)
        for key, value in objective.defaults.items():
            if key in IMAGE_SIZED:  # resolved once the dataset is known (cutout_for)
                continue
            if getattr(self, key) is None:
                setattr(self, key, value)
        if self.eps is None:
            self.eps = 8 / 255
        if self.steps is None:
            self.steps = 7
        if self.step_size is None:
            self.step_size = objective.default_step_size(self.eps, self.steps)
        if self.lr_milestones is None:
            epochs = self.epochs or 1
            # Distinct and past epoch 0: with few epochs both fractions coincide (epochs=2
            # would decay twice at once) or hit 0 (epochs=1 would start at lr·γ²).
            self.lr_milestones = sorted({m for m in (epochs // 2, (3 * epochs) // 4) if m > 0})
        if self.eval_eps is None:
            self.eval_eps = self.eps
        if self.eval_step_size is None:
            self.eval_step_size = 2.5 * self.eval_eps / max(self.eval_steps, 1)

    def validate(self) -> None:
        """Reject values that cannot work, with one clear message."""
        for name in ("eps", "eval_eps"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise UsageError(f"{name} must be in [0, 1] (pixel scale, e.g. 8/255), "
                                 f"got {value:g}")
        for name in ("epochs", "batch_size", "C", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.layers < 1:
            raise UsageError(f"layers must be at least 1, got {self.layers}")
        if self.genotype and not self.ensemble:
            from robustnas.space.models import is_handcrafted_spec
            from robustnas.space.spaces import get_space, spec_space

            if not is_handcrafted_spec(self.genotype):  # the space's depth/size rules
                get_space(spec_space(self.genotype)).check_sizes(self.C, self.layers, "retrain")
        if self.adversarial != "none" and self.steps < 1:
            raise UsageError(f"steps must be at least 1 for {self.adversarial}, "
                             f"got {self.steps}")
        for name in ("step_size", "eval_step_size", "lr", "lr_min", "weight_decay",
                     "grad_clip", "trades_beta", "auxiliary_weight", "lr_gamma", "momentum"):
            if getattr(self, name) < 0:
                raise UsageError(f"{name} must be non-negative, got {getattr(self, name)}")
        if self.lr <= 0:
            raise UsageError(f"lr must be positive, got {self.lr}")
        if not 0.0 <= self.drop_path < 1.0:
            raise UsageError(f"drop_path must be in [0, 1), got {self.drop_path}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise UsageError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, "
                             f"got {self.lr_schedule!r}")
        if list(self.lr_milestones) != sorted(self.lr_milestones) or any(
                m < 0 for m in self.lr_milestones):
            raise UsageError(f"lr_milestones must be increasing epoch indices, "
                             f"got {self.lr_milestones}")
        if self.best_by not in BEST_BY:
            raise UsageError(f"best_by must be clean or robust, got {self.best_by!r}")
        if self.best_by == "robust" and (self.eval_steps < 1 or self.eval_eps == 0):
            raise UsageError("best_by robust needs the held-out PGD evaluation "
                             "(eval_steps >= 1 and eval_eps > 0)")
        from robustnas.space.ensemble import check_ensemble_options

        check_ensemble_options(self.genotype, self.ensemble, self.ensemble_combine,
                               self.ensemble_init)
        from robustnas.train.heldout import check_selection

        check_selection(self)
        if self.attack_bn not in ("eval", "train"):
            raise UsageError(f"attack_bn must be eval or train, got {self.attack_bn!r}")
        for name in ("cutout", "eval_every", "eval_steps", "checkpoint_every",
                     "max_steps_per_epoch"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise UsageError(f"{name} must be non-negative, got {getattr(self, name)}")

    def cutout_for(self, image_size: int) -> int:
        """The cutout side for images of ``image_size`` pixels: the value set, else the
        objective's default for 32x32 images (DARTS' 16) scaled to the image side."""
        if self.cutout is not None:
            return self.cutout
        from robustnas.data.augment import scaled_to_image

        default = int(OBJECTIVES.get(self.adversarial).defaults.get("cutout", 0) or 0)
        return scaled_to_image(default, image_size)

    def objective_settings(self) -> ObjectiveSettings:
        """The subset of options the objective reads."""
        return ObjectiveSettings(eps=self.eps, step_size=self.step_size, steps=self.steps,
                                 random_start=self.random_start, trades_beta=self.trades_beta,
                                 auxiliary_weight=self.auxiliary_weight,
                                 attack_bn=self.attack_bn)


# Options that may differ between a run and its continuation (``--resume``); everything
# else must match the checkpoint, or the continued run would not be the same experiment.
RESUMABLE_KEYS = frozenset({
    "device", "out", "data_root", "download", "eval_every", "eval_n", "eval_steps",
    "eval_eps", "eval_step_size", "eval_batch_size", "checkpoint_every", "amp",
    "channels_last", "threads",
    # after a divergence: continue the last good checkpoint more carefully
    "lr", "grad_clip", "skip_nonfinite",
})
