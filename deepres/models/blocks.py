"""The building blocks of residual networks (He et al., 2016), shared by the CIFAR-style
and the ImageNet-style networks.

``shortcut`` selects the paper's options:

* ``None``: no shortcut - the block of a *plain* network;
* ``"A"``: identity shortcuts; where the shape changes, the identity is subsampled and
  zero-padded with the new channels (no parameters: the paper's choice on CIFAR-10 and
  for its 18/34-layer ImageNet comparison with plain networks);
* ``"B"``: identity shortcuts, and 1x1 projections (with BN) where the shape changes
  (the paper's choice for ResNet-50/101/152, and torchvision's at every depth);
* ``"C"``: projections on every shortcut.
"""
import torch.nn.functional as F
from torch import nn

SHORTCUTS = (None, "A", "B", "C")


def conv3x3(c_in, c_out, stride=1):
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)


def conv1x1(c_in, c_out, stride=1):
    return nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)


class PadShortcut(nn.Module):
    """Option A: take every ``stride``-th pixel and append zero channels."""

    def __init__(self, c_in, c_out, stride):
        super().__init__()
        if c_out < c_in:
            raise ValueError("option A can add channels, not remove them")
        self.extra, self.stride = c_out - c_in, stride

    def forward(self, x):                             # (B, C_in, H, W)
        x = x[:, :, ::self.stride, ::self.stride]     # (B, C_in, H/s, W/s)
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))  # (B, C_out, H/s, W/s)


def make_shortcut(kind, c_in, c_out, stride):
    """The shortcut branch of a block, or None for a plain block."""
    if kind not in SHORTCUTS:
        raise ValueError(f"shortcut must be one of {SHORTCUTS}, got {kind!r}")
    reshape = stride != 1 or c_in != c_out
    if kind is None:
        return None
    if kind == "C" or (kind == "B" and reshape):
        return nn.Sequential(conv1x1(c_in, c_out, stride), nn.BatchNorm2d(c_out))
    if kind == "A" and reshape:
        return PadShortcut(c_in, c_out, stride)
    return nn.Identity()


class BasicBlock(nn.Module):
    """Figure 2 of the paper: y = ReLU(F(x) + x), F = conv-BN-ReLU-conv-BN.

    With ``shortcut=None`` it is the plain block y = ReLU(F(x)). ``batch_norm=False``
    leaves out the BN layers (for the experiments of the degradation chapter).
    """

    def __init__(self, c_in, c_out, stride=1, shortcut="A", batch_norm=True):
        super().__init__()
        norm = nn.BatchNorm2d if batch_norm else (lambda c: nn.Identity())
        self.conv1 = conv3x3(c_in, c_out, stride)
        self.bn1 = norm(c_out)
        self.conv2 = conv3x3(c_out, c_out)
        self.bn2 = norm(c_out)
        self.shortcut = make_shortcut(shortcut, c_in, c_out, stride)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.shortcut is not None:
            out = out + self.shortcut(x)  # the "+" of Figure 2
        return F.relu(out)

    def last_bn(self):
        return self.bn2


class PreActBlock(nn.Module):
    """The pre-activation block of He et al. (2016b, "Identity mappings", Figure 4e):
    y = F(x) + shortcut(x), F = BN-ReLU-conv-BN-ReLU-conv. Nothing follows the addition,
    so an identity shortcut passes the gradient back unchanged. Where the shape changes,
    the shortcut is a 1x1 convolution with stride, on x (no BN: the next block
    normalises); implementations differ on whether it reads x or the pre-activated x.
    """

    def __init__(self, c_in, c_out, stride=1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = conv3x3(c_in, c_out, stride)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = conv3x3(c_out, c_out)
        reshape = stride != 1 or c_in != c_out
        self.shortcut = conv1x1(c_in, c_out, stride) if reshape else nn.Identity()

    def forward(self, x):
        out = self.conv1(F.relu(self.bn1(x)))    # BN and ReLU *before* the weights
        out = self.conv2(F.relu(self.bn2(out)))
        return out + self.shortcut(x)            # the "+" is the block's last step


class Bottleneck(nn.Module):
    """Figure 5 (right) of He et al.: 1x1 (reduce) - 3x3 - 1x1 (restore, x4 channels).

    ``planes`` is the width of the 3x3 layer for a plain ResNet; the block outputs
    ``4 * planes`` channels. With ``groups`` (the *cardinality*) and ``width_per_group``
    it is the ResNeXt block of Xie et al. (2017): the inner width becomes
    ``int(planes * width_per_group / 64) * groups`` and the 3x3 convolution is grouped.

    ``stride_in_1x1=True`` puts the stride on the first 1x1 convolution, as the paper's
    original implementation did; the default puts it on the 3x3 convolution, as
    torchvision ("ResNet v1.5") does, which costs more FLOPs but is more accurate.
    """
    expansion = 4

    def __init__(self, c_in, planes, stride=1, shortcut="B", groups=1, width_per_group=64,
                 stride_in_1x1=False):
        super().__init__()
        width = int(planes * width_per_group / 64) * groups
        c_out = planes * self.expansion
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = conv1x1(c_in, width, s1)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=s3, padding=1, groups=groups,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, c_out)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.shortcut = make_shortcut(shortcut, c_in, c_out, stride)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))    # 1x1: reduce to `width` channels
        out = F.relu(self.bn2(self.conv2(out)))  # 3x3 (grouped for ResNeXt)
        out = self.bn3(self.conv3(out))          # 1x1: restore to 4 * planes channels
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return F.relu(out)

    def last_bn(self):
        return self.bn3
