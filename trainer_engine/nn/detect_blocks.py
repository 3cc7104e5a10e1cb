"""Convolutional building blocks of the detection backbone and neck."""

from __future__ import annotations

import torch
from torch import nn


class ConvBNAct(nn.Module):
    """Convolution, batch norm and SiLU: the unit every other block is made of."""

    def __init__(self, c_in: int, c_out: int, k: int = 1, s: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, s, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=1e-3, momentum=0.03)
        self.act = nn.SiLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply conv, norm and activation."""
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    """Two 3x3 convolutions with an optional residual connection."""

    def __init__(self, c: int, shortcut: bool = True) -> None:
        super().__init__()
        self.cv1 = ConvBNAct(c, c, 3)
        self.cv2 = ConvBNAct(c, c, 3)
        self.add = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the two convolutions, adding the input back when residual."""
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class CSPStage(nn.Module):
    """Cross-stage partial block (CSPNet/ELAN): half the channels skip, every bottleneck output is kept.

    Concatenating each intermediate output gives the fusion conv features at several depths,
    which is what lets a shallow stage see several receptive fields cheaply.
    """

    def __init__(self, c_in: int, c_out: int, n: int = 1, shortcut: bool = True) -> None:
        super().__init__()
        self.c = c_out // 2
        self.cv1 = ConvBNAct(c_in, 2 * self.c, 1)
        self.blocks = nn.ModuleList(Bottleneck(self.c, shortcut) for _ in range(n))
        self.cv2 = ConvBNAct((2 + n) * self.c, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Split, run the bottlenecks on one half, and fuse every intermediate output."""
        ys = list(self.cv1(x).chunk(2, 1))
        for block in self.blocks:
            ys.append(block(ys[-1]))
        return self.cv2(torch.cat(ys, 1))


class SPPF(nn.Module):
    """Spatial pyramid pooling (fast form): three chained max-pools widen the receptive field."""

    def __init__(self, c_in: int, c_out: int, k: int = 5) -> None:
        super().__init__()
        c = c_in // 2
        self.cv1 = ConvBNAct(c_in, c, 1)
        self.cv2 = ConvBNAct(c * 4, c_out, 1)
        self.pool = nn.MaxPool2d(k, 1, k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pool three times and fuse the four scales."""
        y = [self.cv1(x)]
        for _ in range(3):
            y.append(self.pool(y[-1]))
        return self.cv2(torch.cat(y, 1))


class Backbone(nn.Module):
    """Strided CSP stages returning the stride 8, 16 and 32 feature maps."""

    def __init__(self, widths: list[int], depths: list[int], c_in: int = 3) -> None:
        super().__init__()
        w0, w1, w2, w3, w4 = widths
        self.stem = nn.Sequential(
            ConvBNAct(c_in, w0, 3, 2), ConvBNAct(w0, w1, 3, 2), CSPStage(w1, w1, depths[0])
        )
        self.stage3 = nn.Sequential(ConvBNAct(w1, w2, 3, 2), CSPStage(w2, w2, depths[1]))
        self.stage4 = nn.Sequential(ConvBNAct(w2, w3, 3, 2), CSPStage(w3, w3, depths[2]))
        self.stage5 = nn.Sequential(ConvBNAct(w3, w4, 3, 2), CSPStage(w4, w4, depths[3]), SPPF(w4, w4))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return the P3, P4 and P5 feature maps."""
        p3 = self.stage3(self.stem(x))
        p4 = self.stage4(p3)
        return [p3, p4, self.stage5(p4)]


class PANNeck(nn.Module):
    """FPN top-down then PAN bottom-up fusion over three strides (PANet)."""

    def __init__(self, widths: list[int], depth: int) -> None:
        super().__init__()
        c3, c4, c5 = widths
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.td4 = CSPStage(c5 + c4, c4, depth, shortcut=False)
        self.td3 = CSPStage(c4 + c3, c3, depth, shortcut=False)
        self.down3 = ConvBNAct(c3, c3, 3, 2)
        self.bu4 = CSPStage(c3 + c4, c4, depth, shortcut=False)
        self.down4 = ConvBNAct(c4, c4, 3, 2)
        self.bu5 = CSPStage(c4 + c5, c5, depth, shortcut=False)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        """Fuse the backbone maps; return one map per stride, finest first."""
        p3, p4, p5 = feats
        t4 = self.td4(torch.cat([self.up(p5), p4], 1))
        n3 = self.td3(torch.cat([self.up(t4), p3], 1))
        n4 = self.bu4(torch.cat([self.down3(n3), t4], 1))
        n5 = self.bu5(torch.cat([self.down4(n4), p5], 1))
        return [n3, n4, n5]
