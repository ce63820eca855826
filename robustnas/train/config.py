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
from typing import TYPE_CHECKING, Any

from robustnas.errors import UsageError
from robustnas.options import (
    CHANGEABLE,
    FIXED,
    THREADS_HELP,
    check_values,
    option,
    settings_of_class,
)

if TYPE_CHECKING:  # pragma: no cover - imported where used: the objectives need PyTorch,
    from robustnas.train.objectives import ObjectiveSettings  # and --help reads this module

LR_SCHEDULES = ("cosine", "step")
#: Objective defaults given for 32x32 images, scaled to the dataset's when it is loaded.
IMAGE_SIZED = ("cutout",)
BEST_BY = ("clean", "robust")
#: The headings ``robustnas retrain --help`` lists the settings' options under.
GROUP_ATTACK = "attack used for training"
GROUP_OPTIMISATION = "optimisation"
GROUP_NETWORK = "network and data"
GROUP_HELDOUT = "held-out evaluation and checkpoints"
GROUP_EXECUTION = "execution"


@dataclass
class RetrainConfig:
    """Every option of ``robustnas retrain``; YAML keys and ``--set`` names are these fields.

    Fields defaulting to ``None`` take the objective's default (see the module docstring).
    Each field says whether a resumed run may change it (``resume=``: see
    :mod:`robustnas.resume`), and carries its help, allowed values and flag, from which
    ``robustnas retrain``'s options are generated (``flag=""``: ``--set`` only).
    """

    # architecture (genotype: a resumed run checks that a genotype given again is the
    # checkpoint's architecture, however it is spelt; robustnas.train.api)
    genotype: str = option(
        "", resume=FIXED, flag="",  # the command's positional GENOTYPE
        help="genotype JSON file or name (DARTS_V2, ADVRUSH, ...) or a hand-crafted network "
             "(resnet18, wrn-28-10, resnet18@0.25, ...)")
    C: int = option(36, resume=FIXED, low=1, flag="--channels", group=GROUP_NETWORK,
                    help="initial channels C")
    layers: int = option(20, resume=FIXED, low=1, group=GROUP_NETWORK, help="number of cells")
    auxiliary_weight: float | None = option(
        None, resume=FIXED, low=0, group=GROUP_NETWORK,
        help="auxiliary head weight (0: no head; default: the objective's)")
    drop_path: float | None = option(
        None, resume=FIXED, group=GROUP_NETWORK,
        help="final drop-path probability, in [0, 1) (default: the objective's)")
    # joint ensemble (robustnas.space.ensemble): members instead of one genotype
    ensemble: list[str] = option(
        default_factory=list, resume=FIXED, metavar="A,B,C", group=GROUP_NETWORK,
        help="train a joint ensemble of these members instead of GENOTYPE (genotypes or "
             "hand-crafted names; repeats = copies with different initialisations, e.g. "
             "3xDARTS_V2)")
    ensemble_combine: str = option(
        "features", resume=FIXED, choices=("features", "logits", "probs"), group=GROUP_NETWORK,
        help="what the ensemble averages: the members' last feature maps before one "
             "shared classifier (features), their logits or probabilities")
    ensemble_init: str = option(
        "default", resume=FIXED, metavar="SCHEME", group=GROUP_NETWORK,
        help="member initialisations: default, cycled (kaiming-normal, xavier-normal, "
             "kaiming-uniform in turn) or a comma list")
    # data
    dataset: str = option(
        "cifar10", resume=FIXED, group=GROUP_NETWORK,
        help="cifar10, cifar100, svhn, digits, synthetic, or your own: imagefolder "
             "(--data-root DIR of class folders) or npz (--data-root FILE.npz)")
    data_root: str = option("data", resume=CHANGEABLE, metavar="DIR", group=GROUP_NETWORK,
                            help="dataset directory (npz: the .npz file)")
    download: bool = option(False, resume=CHANGEABLE, group=GROUP_NETWORK,
                            help="download the dataset with torchvision if it is missing")
    dataset_options: dict[str, Any] = option(
        default_factory=dict, resume=FIXED, flag="",
        help="the dataset's own options, a mapping (e.g. {n_train: 64} for synthetic)")
    augment: bool = option(True, resume=FIXED, flag="",
                           help="augment the training batches (random crop and flip)")
    # None: the objective's, scaled to the images (cutout_for)
    cutout: int | None = option(
        None, resume=FIXED, low=0, group=GROUP_NETWORK,
        help="cutout size in pixels (0: off; default: the objective's, for none DARTS' 16 "
             "on 32x32 images, half the side on others)")
    # objective
    adversarial: str = option("none", resume=FIXED, metavar="OBJECTIVE",
                              help="none (DARTS standard training), pgd, trades or fgsm-rs")
    eps: float | None = option(None, resume=FIXED, low=0, high=1, group=GROUP_ATTACK,
                               help="L∞ radius in [0, 1] pixels, e.g. 8/255 (default 8/255)")
    steps: int | None = option(None, resume=FIXED, group=GROUP_ATTACK,
                               help="attack steps (default: the objective's, pgd 7, trades 10)")
    step_size: float | None = option(None, resume=FIXED, low=0, group=GROUP_ATTACK,
                                     derived_from=("eps", "steps"),
                                     help="attack step (default ε/4; fgsm-rs 1.25ε)")
    random_start: bool = option(True, resume=FIXED, flag="",
                                help="start the training attack at a random point of the ε-ball")
    trades_beta: float = option(6.0, resume=FIXED, low=0, group=GROUP_ATTACK, help="TRADES β")
    attack_bn: str = option("eval", resume=FIXED, choices=("eval", "train"), group=GROUP_ATTACK,
                            help="BN mode while generating examples")
    # optimisation: the schedule and its state come from the checkpoint; of its settings
    # only lr is re-applied after loading it (robustnas.resume.apply_learning_rate), so
    # only lr may change (after a divergence: continue more carefully)
    epochs: int | None = option(None, resume=FIXED, low=1, group=GROUP_OPTIMISATION,
                                help="training epochs (default: the objective's)")
    batch_size: int | None = option(
        None, resume=FIXED, low=1, group=GROUP_OPTIMISATION,
        help="global batch size (over all processes; default: the objective's)")
    lr: float | None = option(None, resume=CHANGEABLE, group=GROUP_OPTIMISATION,
                              help="initial learning rate (default: the objective's)")
    lr_schedule: str | None = option(
        None, resume=FIXED, choices=LR_SCHEDULES, group=GROUP_OPTIMISATION,
        help="learning-rate schedule (default: the objective's)")
    lr_min: float = option(0.0, resume=FIXED, low=0, flag="",
                           help="the cosine schedule's final learning rate")
    lr_milestones: list[int] | None = option(
        None, resume=FIXED, derived_from=("epochs",), metavar="E1,E2", group=GROUP_OPTIMISATION,
        help="epochs (0-based) where the step schedule multiplies lr by --lr-gamma "
             "(default: at 50% and 75% of the epochs)")
    lr_gamma: float = option(0.1, resume=FIXED, low=0, group=GROUP_OPTIMISATION,
                             help="the step schedule's factor")
    momentum: float = option(0.9, resume=FIXED, low=0, group=GROUP_OPTIMISATION,
                             help="SGD momentum")
    weight_decay: float | None = option(None, resume=FIXED, low=0, group=GROUP_OPTIMISATION,
                                        help="weight decay (default: the objective's)")
    grad_clip: float = option(5.0, resume=CHANGEABLE, low=0, group=GROUP_OPTIMISATION,
                              help="gradient-norm clip (0: off)")
    skip_nonfinite: bool = option(
        False, resume=CHANGEABLE, flag="",
        help="skip a step whose loss or gradient is not finite instead of stopping")
    # held-out evaluation and model selection (robustnas.train.heldout): the selection
    # split is carved from the training set, so it fixes what the run trains on
    select_on: str = option(
        "val", resume=FIXED, choices=("val", "test"), group=GROUP_HELDOUT,
        help="split that selects best.pt: val (carved from the training set) or test "
             "(optimistic, warned about)")
    val_n: int | None = option(
        None, resume=FIXED, group=GROUP_HELDOUT,  # checked with select_on (train.heldout)
        help="training images held out for validation (default min(1000, 10%))")
    val_seed: int = option(0, resume=FIXED, flag="",
                           help="seed of the validation carve (the same split for any seed)")
    eval_every: int = option(1, resume=CHANGEABLE, low=0, group=GROUP_HELDOUT,
                             help="epochs between held-out evaluations (0: never)")
    eval_n: int = option(1000, resume=CHANGEABLE, group=GROUP_HELDOUT,
                         help="held-out images evaluated each time (0: all)")
    eval_steps: int = option(10, resume=CHANGEABLE, low=0, group=GROUP_HELDOUT,
                             help="PGD steps of the evaluation")
    eval_eps: float | None = option(None, resume=CHANGEABLE, derived_from=("eps",),
                                    low=0, high=1, flag="",
                                    help="ε of the held-out PGD evaluation (default: eps)")
    eval_step_size: float | None = option(
        None, resume=CHANGEABLE, derived_from=("eval_eps", "eval_steps"), low=0, flag="",
        help="step of the held-out PGD evaluation (default 2.5·eval_eps/eval_steps)")
    eval_batch_size: int = option(250, resume=CHANGEABLE, low=1, flag="",
                                  help="images per held-out evaluation batch")
    best_by: str | None = option(None, resume=FIXED, choices=BEST_BY, group=GROUP_HELDOUT,
                                 help="metric that selects best.pt (default robust when "
                                      "adversarial)")
    # execution
    seed: int = option(0, resume=FIXED, group=GROUP_EXECUTION, help="random seed")
    device: str = option("auto", resume=CHANGEABLE, group=GROUP_EXECUTION,
                         help="auto, cpu, cuda, cuda:N")
    out: str = option("runs/retrain", resume=CHANGEABLE, metavar="DIR", group=GROUP_EXECUTION,
                      help="run directory")
    amp: bool = option(False, resume=CHANGEABLE, group=GROUP_EXECUTION,
                       help="bf16 autocast (CUDA only)")
    channels_last: bool = option(False, resume=CHANGEABLE, group=GROUP_EXECUTION,
                                 help="channels-last memory format")
    # execution settings, changeable as in a search: batch norm across processes (DDP)
    sync_bn: bool = option(False, resume=CHANGEABLE, group=GROUP_EXECUTION,
                           help="under torchrun: batch-norm statistics over the global batch")
    checkpoint_every: int = option(200, resume=CHANGEABLE, low=0, group=GROUP_HELDOUT,
                                   help="steps between mid-epoch last.pt saves")
    max_steps_per_epoch: int = option(0, resume=CHANGEABLE, low=0, flag="",
                                      help="> 0: cap an epoch's steps (smoke runs)")
    threads: int = option(0, resume=CHANGEABLE, metavar="N", group=GROUP_EXECUTION,
                          help=THREADS_HELP)

    def __post_init__(self) -> None:
        from robustnas.train.objectives import OBJECTIVES

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
        check_values(self)  # the choices and ranges the fields declare
        if self.genotype and not self.ensemble:
            from robustnas.space.models import is_handcrafted_spec
            from robustnas.space.spaces import get_space, spec_space

            if not is_handcrafted_spec(self.genotype):  # the space's depth/size rules
                get_space(spec_space(self.genotype)).check_sizes(self.C, self.layers, "retrain")
        if self.adversarial != "none" and self.steps < 1:
            raise UsageError(f"steps must be at least 1 for {self.adversarial}, "
                             f"got {self.steps}")
        if self.lr <= 0:
            raise UsageError(f"lr must be positive, got {self.lr}")
        if not 0.0 <= self.drop_path < 1.0:
            raise UsageError(f"drop_path must be in [0, 1), got {self.drop_path}")
        if list(self.lr_milestones) != sorted(self.lr_milestones) or any(
                m < 0 for m in self.lr_milestones):
            raise UsageError(f"lr_milestones must be increasing epoch indices, "
                             f"got {self.lr_milestones}")
        if self.best_by == "robust" and (self.eval_steps < 1 or self.eval_eps == 0):
            raise UsageError("best_by robust needs the held-out PGD evaluation "
                             "(eval_steps >= 1 and eval_eps > 0)")
        from robustnas.space.ensemble import check_ensemble_options

        check_ensemble_options(self.genotype, self.ensemble, self.ensemble_combine,
                               self.ensemble_init)
        from robustnas.train.heldout import check_selection

        check_selection(self)

    def cutout_for(self, image_size: int) -> int:
        """The cutout side for images of ``image_size`` pixels: the value set, else the
        objective's default for 32x32 images (DARTS' 16) scaled to the image side."""
        if self.cutout is not None:
            return self.cutout
        from robustnas.data.augment import scaled_to_image
        from robustnas.train.objectives import OBJECTIVES

        default = int(OBJECTIVES.get(self.adversarial).defaults.get("cutout", 0) or 0)
        return scaled_to_image(default, image_size)

    def objective_settings(self) -> ObjectiveSettings:
        """The subset of options the objective reads."""
        from robustnas.train.objectives import ObjectiveSettings

        return ObjectiveSettings(eps=self.eps, step_size=self.step_size, steps=self.steps,
                                 random_start=self.random_start, trades_beta=self.trades_beta,
                                 auxiliary_weight=self.auxiliary_weight,
                                 attack_bn=self.attack_bn)


#: Options that may differ between a run and its continuation (``--resume``), as declared on
#: the fields (``resume=CHANGEABLE``); everything else must match the checkpoint, or the
#: continued run would not be the same experiment (see robustnas.resume).
RESUMABLE_KEYS = settings_of_class(RetrainConfig, CHANGEABLE)
