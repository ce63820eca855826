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

from dataclasses import dataclass
from typing import Any

from robustnas.errors import UsageError
from robustnas.options import CHANGEABLE, FIXED, option, settings_of_class
from robustnas.train.objectives import OBJECTIVES, ObjectiveSettings

LR_SCHEDULES = ("cosine", "step")
#: Objective defaults given for 32x32 images, scaled to the dataset's when it is loaded.
IMAGE_SIZED = ("cutout",)
BEST_BY = ("clean", "robust")


@dataclass
class RetrainConfig:
    """Every option of ``robustnas retrain``; YAML keys and ``--set`` names are these fields.

    Fields defaulting to ``None`` take the objective's default (see the module docstring).
    Each field says whether a resumed run may change it (``resume=``: see
    :mod:`robustnas.resume`).
    """

    # architecture (genotype: a resumed run checks that a genotype given again is the
    # checkpoint's architecture, however it is spelt; robustnas.train.api)
    genotype: str = option("", resume=FIXED)
    C: int = option(36, resume=FIXED)
    layers: int = option(20, resume=FIXED)
    auxiliary_weight: float | None = option(None, resume=FIXED)
    drop_path: float | None = option(None, resume=FIXED)
    # joint ensemble (robustnas.space.ensemble): members instead of one genotype
    ensemble: list[str] = option(default_factory=list, resume=FIXED)
    # features (seed 000), logits or probs
    ensemble_combine: str = option("features", resume=FIXED)
    # default, seed000 or a comma list of schemes
    ensemble_init: str = option("default", resume=FIXED)
    # data
    dataset: str = option("cifar10", resume=FIXED)
    data_root: str = option("data", resume=CHANGEABLE)
    download: bool = option(False, resume=CHANGEABLE)
    dataset_options: dict[str, Any] = option(default_factory=dict, resume=FIXED)
    augment: bool = option(True, resume=FIXED)
    # None: the objective's, scaled to the images (cutout_for)
    cutout: int | None = option(None, resume=FIXED)
    # objective
    adversarial: str = option("none", resume=FIXED)
    eps: float | None = option(None, resume=FIXED)
    steps: int | None = option(None, resume=FIXED)
    step_size: float | None = option(None, resume=FIXED, derived_from=("eps", "steps"))
    random_start: bool = option(True, resume=FIXED)
    trades_beta: float = option(6.0, resume=FIXED)
    attack_bn: str = option("eval", resume=FIXED)
    # optimisation: the schedule and its state come from the checkpoint; of its settings
    # only lr is re-applied after loading it (robustnas.resume.apply_learning_rate), so
    # only lr may change (after a divergence: continue more carefully)
    epochs: int | None = option(None, resume=FIXED)
    batch_size: int | None = option(None, resume=FIXED)
    lr: float | None = option(None, resume=CHANGEABLE)
    lr_schedule: str | None = option(None, resume=FIXED)
    lr_min: float = option(0.0, resume=FIXED)
    lr_milestones: list[int] | None = option(None, resume=FIXED, derived_from=("epochs",))
    lr_gamma: float = option(0.1, resume=FIXED)
    momentum: float = option(0.9, resume=FIXED)
    weight_decay: float | None = option(None, resume=FIXED)
    grad_clip: float = option(5.0, resume=CHANGEABLE)
    # skip steps with a non-finite loss/gradient
    skip_nonfinite: bool = option(False, resume=CHANGEABLE)
    # held-out evaluation and model selection (robustnas.train.heldout): the selection
    # split is carved from the training set, so it fixes what the run trains on
    # "val": a split carved from training; "test": optimistic
    select_on: str = option("val", resume=FIXED)
    # validation images carved (None: min(1000, train/10))
    val_n: int | None = option(None, resume=FIXED)
    # seed of the validation carve (same split for any seed)
    val_seed: int = option(0, resume=FIXED)
    # epochs between held-out evaluations (0: never)
    eval_every: int = option(1, resume=CHANGEABLE)
    # held-out images evaluated (0: the whole selection split)
    eval_n: int = option(1000, resume=CHANGEABLE)
    eval_steps: int = option(10, resume=CHANGEABLE)
    eval_eps: float | None = option(None, resume=CHANGEABLE, derived_from=("eps",))
    eval_step_size: float | None = option(None, resume=CHANGEABLE,
                                          derived_from=("eval_eps", "eval_steps"))
    eval_batch_size: int = option(250, resume=CHANGEABLE)
    best_by: str | None = option(None, resume=FIXED)
    # execution
    seed: int = option(0, resume=FIXED)
    device: str = option("auto", resume=CHANGEABLE)
    out: str = option("runs/retrain", resume=CHANGEABLE)
    amp: bool = option(False, resume=CHANGEABLE)
    channels_last: bool = option(False, resume=CHANGEABLE)
    # execution settings, changeable as in a search: batch norm across processes (DDP)
    sync_bn: bool = option(False, resume=CHANGEABLE)
    checkpoint_every: int = option(200, resume=CHANGEABLE)
    # > 0: cap an epoch's steps (smoke runs)
    max_steps_per_epoch: int = option(0, resume=CHANGEABLE)
    # CPU threads (0: OMP_NUM_THREADS or min(cores, 4))
    threads: int = option(0, resume=CHANGEABLE)

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


#: Options that may differ between a run and its continuation (``--resume``), as declared on
#: the fields (``resume=CHANGEABLE``); everything else must match the checkpoint, or the
#: continued run would not be the same experiment (see robustnas.resume).
RESUMABLE_KEYS = settings_of_class(RetrainConfig, CHANGEABLE)
