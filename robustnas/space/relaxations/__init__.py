"""Search relaxations: how a supernet makes its discrete choices differentiable.

=============  ===================================================================
``darts``      softmax(α) mixture over every operation of every edge (default)
``pc-darts``   partial channel connections (K = 4) and edge normalisation β
``gdas``       Gumbel-softmax hard sampling: one operation per edge per pass
=============  ===================================================================

Each module of this package registers its relaxation in ``RELAXATIONS``, which imports them
on its first lookup (:class:`robustnas.registry.Registry` ``discover=``), so a new
relaxation is a new file. A supernet gets its relaxation at construction
(``relaxation=``, ``relaxation_options=``; checkpoints record both in the payload's
``arch``; the search builds its supernet so, :func:`robustnas.search.setup.build_supernet`)
or through its ``set_relaxation``. The interface is
:class:`~robustnas.space.relaxations.base.Relaxation`.
"""

from robustnas.space.relaxations.base import (
    DEFAULT_RELAXATION,
    RELAXATIONS,
    Relaxation,
    make_relaxation,
)

__all__ = ["DEFAULT_RELAXATION", "RELAXATIONS", "Relaxation", "make_relaxation"]
