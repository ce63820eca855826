"""What a retraining sets up around its loop: the divergence guard, the genotype to build,
and the files written when it starts (the running :class:`~robustnas.train.trainer.Trainer`
is ``self``)."""

from __future__ import annotations

import sys
from typing import Any

from torch import nn

from robustnas.config import config_to_dict, save_config
from robustnas.divergence import DivergenceGuard
from robustnas.errors import UsageError
from robustnas.monitor.hparams import RETRAIN_METRICS, log_hparams
from robustnas.space.models import describe_architecture, is_handcrafted_spec, save_architecture
from robustnas.space.spaces import space_of_genotype
from robustnas.train.config import RetrainConfig
from robustnas.train.epoch_log import RetrainLogger
from robustnas.train.state import LAST_NAME


def retrain_divergence_guard(self: Any) -> DivergenceGuard:
    """Stops the run at the first non-finite loss, gradient norm or weight."""
    config = self.config
    guard = DivergenceGuard(
        "retraining", skip_nonfinite=config.skip_nonfinite,
        checkpoint=self.run_dir / LAST_NAME, steps_per_epoch=self.steps_per_epoch_count,
        hint="(lower the learning rate with --lr, or clip with --grad-clip, or skip such "
             "steps with --set skip_nonfinite=true)")
    guard.watch_optimizer(self.optimizer, "weights")
    return guard


def genotype_to_build(config: RetrainConfig, resume_state: dict[str, Any] | None) -> Any | None:
    """The genotype of the network to build; None when the network comes from the
    checkpoint, a hand-crafted name or an ensemble."""
    if resume_state is not None:
        return None  # the network (and its genotype) come from the checkpoint
    if config.ensemble or is_handcrafted_spec(config.genotype):
        return None  # hand-crafted network or ensemble: built from its name
    if not config.genotype:
        raise UsageError("no genotype given: pass GENOTYPE (a genotype JSON file or a "
                         "name such as DARTS_V2 or ADVRUSH)")
    from robustnas.space.spaces import load_any_genotype

    return load_any_genotype(config.genotype)  # a genotype of any space


def start_run_files(self: Any, net: nn.Module, resumed: bool) -> RetrainLogger:
    """Lock the run directory and write its config, genotype or architecture (rank 0); the
    TensorBoard logger with the config, hparams and architecture."""
    config = self.config
    if config.eval_every == 0 and self.dist.is_main:
        print("note: eval_every is 0: no held-out evaluation, so no best.pt is written; "
              "last.pt holds the final weights", file=sys.stderr)
    main = self.dist.is_main
    if main:
        self.session.open(self.run_dir, resume=resumed, overwrite=self.overwrite)
        save_config(config, self.run_dir / "config.yaml")
        if self.genotype is not None:
            space_of_genotype(self.genotype).save(self.genotype,
                                                  self.run_dir / "genotype.json")
        else:
            save_architecture(net, self.run_dir / "architecture.json")
    log = RetrainLogger(self.run_dir, enabled=main, epochs=config.epochs,
                        clean_mode=self.objective.clean_metric_mode)
    log.text("config", "\n".join(f"    {k}: {v}" for k, v in config_to_dict(config).items()))
    log_hparams(log.writer, config, RETRAIN_METRICS)
    log.text("genotype", describe_architecture(net))
    if main and "warning" in self.data.selection:
        print(f"warning: {self.data.selection['warning']}", file=sys.stderr)
    return log
