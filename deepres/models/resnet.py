"""ImageNet-style ResNets (He et al., 2016, Table 1) and ResNeXt (Xie et al., 2017),
with torchvision's layout.

A 7x7 stride-2 convolution and a 3x3 stride-2 max-pool, four stages of blocks of
widths 64, 128, 256 and 512 (the last three start with stride 2), global average
pooling and a 1000-way fully connected layer. Depths are lists of blocks per stage.
Shortcuts are option B: identity, and a 1x1 projection where the shape changes.
"""
import torch
from torch import nn

from .blocks import BasicBlock, Bottleneck

# name: (block, blocks per stage, block options)
LAYERS = {
    "resnet18": (BasicBlock, [2, 2, 2, 2], {}),
    "resnet34": (BasicBlock, [3, 4, 6, 3], {}),
    "resnet50": (Bottleneck, [3, 4, 6, 3], {}),
    "resnet101": (Bottleneck, [3, 4, 23, 3], {}),
    "resnet152": (Bottleneck, [3, 8, 36, 3], {}),
    "resnext50_32x4d": (Bottleneck, [3, 4, 6, 3], dict(groups=32, width_per_group=4)),
}


class ResNet(nn.Module):
    def __init__(self, block, layers, num_classes=1000, widths=(64, 128, 256, 512),
                 zero_init_residual=False, **block_options):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        c_in, stages = widths[0], []
        for i, (width, n_blocks) in enumerate(zip(widths, layers)):
            blocks = []
            for j in range(n_blocks):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(block(c_in, width, stride, shortcut="B", **block_options))
                c_in = width * getattr(block, "expansion", 1)
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if zero_init_residual:  # Goyal et al. (2017); not in the original paper
            for m in self.modules():
                if isinstance(m, block):
                    nn.init.zeros_(m.last_bn().weight)

    def forward(self, x):                      # (B, 3, 224, 224)
        x = self.relu(self.bn1(self.conv1(x)))  # (B, 64, 112, 112)
        x = self.maxpool(x)                    # (B, 64, 56, 56)
        x = self.layer1(x)                     # (B, 64 e, 56, 56), e = block expansion
        x = self.layer2(x)                     # (B, 128 e, 28, 28)
        x = self.layer3(x)                     # (B, 256 e, 14, 14)
        x = self.layer4(x)                     # (B, 512 e, 7, 7)
        x = torch.flatten(self.avgpool(x), 1)  # (B, 512 e)
        return self.fc(x)                      # (B, num_classes)


def resnet(name, **kwargs):
    """A ResNet or ResNeXt of the table above, by name; kwargs override block options."""
    if name not in LAYERS:
        raise ValueError(f"Unknown ResNet {name!r}; choose one of {', '.join(LAYERS)}.")
    block, layers, options = LAYERS[name]
    return ResNet(block, layers, **{**options, **kwargs})


def from_torchvision(state_dict):
    """Rename a torchvision ResNet state_dict to this layout: its 'downsample' branch is
    our 'shortcut'; every other name is the same."""
    return {k.replace(".downsample.", ".shortcut."): v for k, v in state_dict.items()}
