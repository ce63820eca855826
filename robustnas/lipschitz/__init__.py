"""Lipschitz maths shared by every space: operator norms of layers, the forward pass that
records the sizes they depend on, batched power iteration, and log-normal moment matching.

A leaf of the package: it imports only PyTorch and :mod:`robustnas.errors`, and names no
search space. The spaces compose these per-layer bounds over their own cells
(``robustnas/space/<name>/lipschitz*.py``); :mod:`robustnas.evaluation.lipschitz` and the
log-normal regulariser (:mod:`robustnas.search.regularizers.lipschitz`) reach them through
the space protocol.

* :mod:`.operator_norms`: certified per-layer bounds (FFT convolution norm, pooling, BN);
* :mod:`.bounder`: :class:`LayerBounder`, the bound of a module by its type;
* :mod:`.shapes`: input sizes recorded in one forward pass;
* :mod:`.spectral`: power iteration and exact pooling norms (the regulariser's estimates);
* :mod:`.power_groups`: layers of one geometry power-iterated together;
* :mod:`.moments`: Fenton–Wilkinson moment matching of correlated log-normal sums.
"""

from robustnas.lipschitz.bounder import LayerBounder
from robustnas.lipschitz.moments import fenton_wilkinson, lognormal_sums
from robustnas.lipschitz.operator_norms import conv2d_norm_bound
from robustnas.lipschitz.shapes import layer_input_shapes, record_shapes

__all__ = ["LayerBounder", "conv2d_norm_bound", "fenton_wilkinson", "layer_input_shapes",
           "lognormal_sums", "record_shapes"]
