"""``darts`` (Liu et al., ICLR 2019): every edge a softmax(α)-weighted sum of all its
operations. The default, and what every supernet did before relaxations were a choice: the
same sampler (:class:`~robustnas.space.arch_sampler.ArchSampler`), no extra parameters, no
random numbers, so a search is bit-identical to one before.

Works with everything the search offers: first and second order and every regulariser
(the Lipschitz method's log-normal and DrNAS' Dirichlet samplers replace this softmax:
:attr:`~robustnas.space.relaxations.base.Relaxation.replaceable_sampler`).
"""

from __future__ import annotations

from robustnas.space.relaxations.base import DEFAULT_RELAXATION, RELAXATIONS, Relaxation


@RELAXATIONS.register(DEFAULT_RELAXATION)
class SoftmaxMixture(Relaxation):
    """DARTS' continuous relaxation: softmax(α) over all operations of an edge."""

    name = DEFAULT_RELAXATION
