"""The NARes search space (Lu et al., "A Neural Architecture Dataset for Adversarial
Robustness"): WideResNets with a depth D_i in {4, 5, 7, 9, 11} and a widen factor W_i in
{8, 10, 12, 14, 16} per stage, 15,625 architectures. Modules, one concept each:

- :mod:`.genotype`: the architecture (``D1,W1,D2,W2,D3,W3`` string, JSON, validation,
  enumeration),
- :mod:`.network`: the discrete WideResNet (and its rebuild from a checkpoint payload),
- :mod:`.sampler`: uniform draws, Optuna suggestions, mutation,
- :mod:`.picture`: the three-stage picture,
- :mod:`.info`: parameters and MACs.

The space adapter (:mod:`robustnas.space.protocol`) is built on these functions; the table
reader is :mod:`robustnas.tables.nares`.
"""
