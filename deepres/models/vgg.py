"""VGG (Simonyan & Zisserman, 2015), built from a configuration table.

Each entry of a configuration is the width of a 3x3 convolution (stride 1, padding 1,
followed by ReLU), or "M" for a 2x2 max-pool with stride 2. The layer layout and the
names of the parameters are torchvision's, so its state_dicts load unchanged.
"""
import torch
from torch import nn

# Table 1 of the paper: configurations A, B, D and E (A-LRN and C are left out: C uses
# 1x1 convolutions, which this table format does not describe).
CONFIGS = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
              512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
              512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def make_features(config, in_channels=3, batch_norm=False, kernel_size=3):
    """The convolutional part: conv-(BN)-ReLU for each width, max-pool for each "M"."""
    layers = []
    for item in config:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        if not isinstance(item, int) or item <= 0:
            raise ValueError(f"A VGG configuration holds positive widths and 'M'; got {item!r}.")
        # padding k//2 keeps the spatial size, so only the pools shrink it
        layers.append(nn.Conv2d(in_channels, item, kernel_size, padding=kernel_size // 2))
        if batch_norm:
            layers.append(nn.BatchNorm2d(item))
        layers.append(nn.ReLU(inplace=True))
        in_channels = item
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """VGG with the paper's classifier: two hidden fully connected layers with dropout.

    ``pool_size`` is the side of the feature map the classifier sees (7 for 224x224
    ImageNet input, as in the paper); ``hidden`` is the width of the hidden layers.
    """

    def __init__(self, config, num_classes=1000, in_channels=3, batch_norm=False,
                 hidden=4096, pool_size=7, dropout=0.5, kernel_size=3):
        super().__init__()
        widths = [c for c in config if c != "M"]
        if not widths:
            raise ValueError("A VGG configuration needs at least one convolution.")
        self.features = make_features(config, in_channels, batch_norm, kernel_size)
        self.avgpool = nn.AdaptiveAvgPool2d((pool_size, pool_size))
        self.classifier = nn.Sequential(
            nn.Linear(widths[-1] * pool_size * pool_size, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )
        # The paper initialised deep configurations from the trained configuration A and
        # noted afterwards that Glorot initialisation works without it; like torchvision we
        # use He et al. (2015) initialisation, made for ReLU networks.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):              # (B, C, H, W)
        x = self.features(x)           # (B, 512, H/32, W/32) for the ImageNet configurations
        x = self.avgpool(x)            # (B, 512, 7, 7)
        x = torch.flatten(x, 1)        # (B, 512*7*7)
        return self.classifier(x)      # (B, num_classes)


def vgg(name="vgg16", **kwargs):
    """One of the paper's configurations by name: vgg11, vgg13, vgg16, vgg19."""
    if name not in CONFIGS:
        raise ValueError(f"Unknown VGG {name!r}; choose one of {', '.join(CONFIGS)}.")
    return VGG(CONFIGS[name], **kwargs)
