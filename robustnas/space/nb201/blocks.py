"""The residual block between NAS-Bench-201 stages (a ResNet basic block)."""

from __future__ import annotations

import torch
from torch import nn

from robustnas.space.nb201.ops import ReLUConvBN


class ResNetBasicBlock(nn.Module):
    """ReLU-Conv3×3(stride)-BN → ReLU-Conv3×3-BN, plus a shortcut.

    With stride 2 the shortcut is a 2×2 average pool followed by a 1×1 convolution (no BN);
    with stride 1 and a width change it is ReLU-Conv1×1-BN; otherwise the identity.
    """

    def __init__(self, C_in: int, C_out: int, stride: int, affine: bool = True,
                 track_running_stats: bool = True) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        self.conv_a = ReLUConvBN(C_in, C_out, 3, stride, 1, affine, track_running_stats)
        self.conv_b = ReLUConvBN(C_out, C_out, 3, 1, 1, affine, track_running_stats)
        self.downsample: nn.Module | None
        if stride == 2:
            self.downsample = nn.Sequential(nn.AvgPool2d(2, stride=2, padding=0),
                                            nn.Conv2d(C_in, C_out, 1, bias=False))
        elif C_in != C_out:
            self.downsample = ReLUConvBN(C_in, C_out, 1, 1, 0, affine, track_running_stats)
        else:
            self.downsample = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        return residual + self.conv_b(self.conv_a(x))
