"""Adversarial attacks in [0, 1] pixel space.

* :mod:`robustnas.attacks.pgd`: batched PGD/FGSM functions shared with adversarial training.
* :mod:`robustnas.attacks.base`: the :class:`Attack` interface and the ``ATTACKS`` registry.
* :mod:`robustnas.attacks.standard`: ``clean``, ``fgsm``, ``pgd<k>``, ``cw<k>``.
* :mod:`robustnas.attacks.autoattack`: ``autoattack`` and its parts (through
  ``pyautoattack``, optional extra).

A new attack is a new module here that uses :func:`~robustnas.attacks.base.register_attack`;
``ATTACKS`` imports this package's modules on its first lookup.
"""

from robustnas.attacks.base import (
    ATTACKS,
    Attack,
    AttackOutput,
    attack_names,
    make_attack,
    parse_attack_list,
)
from robustnas.attacks.pgd import fgsm_attack, logits_of, margin_loss, pgd_attack

__all__ = ["ATTACKS", "Attack", "AttackOutput", "attack_names", "fgsm_attack", "logits_of",
           "make_attack", "margin_loss", "parse_attack_list", "pgd_attack"]
