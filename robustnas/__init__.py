"""robustnas: differentiable, robustness-aware neural architecture search on PyTorch."""

__version__ = "0.1.0"
