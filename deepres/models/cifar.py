"""The CIFAR-10 networks of He et al. (2016), section 4.2: plain and residual, one code path.

A 3x3 convolution with 16 filters, then three stages of ``n`` blocks on feature maps of
sizes 32, 16 and 8 with 16, 32 and 64 filters, then global average pooling and a
10-way fully connected layer: 6n+2 weight layers in all. The first convolution of stages
2 and 3 has stride 2. A plain and a residual network differ only in the ``shortcut``
switch of their blocks (see ``blocks.py``): ``None`` for plain, ``"A"`` (the paper's
CIFAR choice), ``"B"`` or ``"C"`` for residual.
"""
import torch.nn.functional as F
from torch import nn

from .blocks import BasicBlock, Bottleneck, conv3x3


class CifarNet(nn.Module):
    """Plain or residual network of depth 6n+2 (20, 32, 44, 56, 110, ... for n=3, 5, ...).

    With ``bottleneck=True`` the blocks are bottlenecks (depth 9n+2, as ResNet-164 of He
    et al., 2016b) and ``bottleneck_options`` (groups, width_per_group) make it ResNeXt.
    ``block``, a class or function ``block(c_in, c_out, stride)``, builds the basic
    blocks instead of :class:`BasicBlock` (for example a learner's own block).
    ``final_norm=True`` adds BN and ReLU after the last block: a network of
    pre-activation blocks needs it, because its blocks end with the addition and nothing
    normalises the sum (He et al., 2016b).
    """

    def __init__(self, depth=20, shortcut="A", widths=(16, 32, 64), in_channels=3,
                 num_classes=10, batch_norm=True, zero_init_residual=False,
                 bottleneck=False, block=None, final_norm=False, **bottleneck_options):
        super().__init__()
        layers_per_block = 3 if bottleneck else 2
        if depth < 3 * layers_per_block + 2 or (depth - 2) % (3 * layers_per_block):
            raise ValueError(f"depth must be {3 * layers_per_block}n+2 with n >= 1 "
                             f"for {'bottleneck' if bottleneck else 'basic'} blocks; got {depth}")
        n = (depth - 2) // (3 * layers_per_block)
        self.conv = conv3x3(in_channels, widths[0])
        self.bn = nn.BatchNorm2d(widths[0]) if batch_norm else nn.Identity()
        make = block or (lambda c_in, c_out, stride: BasicBlock(c_in, c_out, stride, shortcut,
                                                                  batch_norm))
        blocks, c_in = [], widths[0]
        for stage, width in enumerate(widths):
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                if bottleneck:  # `width` is the block's planes; it outputs 4 * width
                    blocks.append(Bottleneck(c_in, width, stride, shortcut, **bottleneck_options))
                    c_in = width * Bottleneck.expansion
                else:
                    blocks.append(make(c_in, width, stride))
                    c_in = width
        self.blocks = nn.Sequential(*blocks)
        self.final = (nn.Sequential(nn.BatchNorm2d(c_in), nn.ReLU()) if final_norm
                      else nn.Identity())
        self.fc = nn.Linear(c_in, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # He et al. (2015) initialisation, as the paper
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if zero_init_residual:
            # Goyal et al. (2017): the last BN of each residual branch starts at 0, so each
            # block starts as the identity. Not in the original paper.
            for block in self.blocks:
                nn.init.zeros_(block.last_bn().weight)

    def forward(self, x):                  # (B, C, H, W)
        x = F.relu(self.bn(self.conv(x)))  # (B, 16, H, W)
        x = self.final(self.blocks(x))     # (B, 64, H/4, W/4)
        x = x.mean((2, 3))                 # global average pooling: (B, 64)
        return self.fc(x)                  # (B, num_classes)


def plain(depth, **kwargs):
    return CifarNet(depth, shortcut=None, **kwargs)


def resnet_cifar(depth, **kwargs):
    return CifarNet(depth, shortcut=kwargs.pop("shortcut", "A"), **kwargs)
