"""DenseNet (Huang et al., 2017), with torchvision's layout and parameter names.

Inside a dense block, layer l receives the concatenation of the block's input and the
outputs of all l-1 layers before it, and adds ``growth_rate`` (k) new channels. A block
of L layers on c channels therefore outputs c + L*k channels. DenseNet-B layers start
with a 1x1 "bottleneck" convolution to ``bn_size * k`` channels; DenseNet-C transitions
compress the channels by ``compression`` (0.5); DenseNet-BC does both.
"""
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint


class DenseLayer(nn.Module):
    """BN-ReLU-Conv1x1(bn_size*k)-BN-ReLU-Conv3x3(k) on the concatenated inputs.

    ``memory_efficient`` trades time for memory with ``torch.utils.checkpoint``: the
    checkpointed part keeps none of its intermediate tensors and recomputes them during
    the backward pass (Pleiss et al., 2017). ``"bottleneck"`` checkpoints the
    concatenation, the first BN-ReLU and the 1x1 convolution, as torchvision's
    ``memory_efficient=True`` does; ``True`` (or ``"layer"``) checkpoints the whole layer.
    Caveat: the recomputation updates BN's running statistics a second time.
    """

    def __init__(self, c_in, growth_rate, bn_size=4, memory_efficient=False):
        super().__init__()
        if memory_efficient not in (False, True, "layer", "bottleneck"):
            raise ValueError("memory_efficient must be False, True, 'layer' or 'bottleneck'; "
                             f"got {memory_efficient!r}")
        self.norm1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, bn_size * growth_rate, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False)
        self.memory_efficient = memory_efficient

    def bottleneck(self, *features):
        x = torch.cat(features, 1)                   # (B, c_in, H, W): the big tensor
        return self.conv1(F.relu(self.norm1(x)))     # (B, bn_size * k, H, W)

    def layer(self, *features):
        x = self.bottleneck(*features)               # (B, bn_size * k, H, W)
        return self.conv2(F.relu(self.norm2(x)))     # (B, k, H, W)

    def forward(self, features):                     # a list of (B, c_i, H, W)
        recompute = self.memory_efficient and torch.is_grad_enabled()
        if recompute and self.memory_efficient == "bottleneck":
            x = checkpoint(self.bottleneck, *features, use_reentrant=False)
            return self.conv2(F.relu(self.norm2(x)))
        if recompute:
            return checkpoint(self.layer, *features, use_reentrant=False)
        return self.layer(*features)


class DenseBlock(nn.ModuleDict):
    def __init__(self, n_layers, c_in, growth_rate, bn_size=4, memory_efficient=False):
        super().__init__()
        for i in range(n_layers):
            self[f"denselayer{i + 1}"] = DenseLayer(c_in + i * growth_rate, growth_rate,
                                                    bn_size, memory_efficient)

    def forward(self, x):
        features = [x]
        for layer in self.values():
            features.append(layer(features))  # each layer sees all earlier outputs
        return torch.cat(features, 1)         # (B, c_in + n_layers * k, H, W)


class Transition(nn.Sequential):
    """BN-ReLU-Conv1x1 (to c_out channels)-AvgPool 2x2: between dense blocks."""

    def __init__(self, c_in, c_out):
        super().__init__(OrderedDict(norm=nn.BatchNorm2d(c_in), relu=nn.ReLU(inplace=True),
                                     conv=nn.Conv2d(c_in, c_out, 1, bias=False),
                                     pool=nn.AvgPool2d(2, stride=2)))


class DenseNet(nn.Module):
    """``stem="imagenet"``: 7x7/2 convolution, BN, ReLU, 3x3/2 max-pool (the paper's
    ImageNet networks); ``stem="cifar"``: one 3x3 convolution (its CIFAR networks)."""

    def __init__(self, block_config=(6, 12, 24, 16), growth_rate=32, num_init_features=64,
                 bn_size=4, compression=0.5, num_classes=1000, in_channels=3,
                 stem="imagenet", memory_efficient=False):
        super().__init__()
        if stem == "imagenet":
            layers = [("conv0", nn.Conv2d(in_channels, num_init_features, 7, 2, 3, bias=False)),
                      ("norm0", nn.BatchNorm2d(num_init_features)),
                      ("relu0", nn.ReLU(inplace=True)),
                      ("pool0", nn.MaxPool2d(3, 2, 1))]
        elif stem == "cifar":
            layers = [("conv0", nn.Conv2d(in_channels, num_init_features, 3, 1, 1, bias=False))]
        else:
            raise ValueError(f"stem must be 'imagenet' or 'cifar', got {stem!r}")
        self.features = nn.Sequential(OrderedDict(layers))
        c = num_init_features
        for i, n_layers in enumerate(block_config):
            self.features.add_module(f"denseblock{i + 1}", DenseBlock(
                n_layers, c, growth_rate, bn_size, memory_efficient))
            c = c + n_layers * growth_rate
            if i < len(block_config) - 1:
                c_out = int(c * compression)
                self.features.add_module(f"transition{i + 1}", Transition(c, c_out))
                c = c_out
        self.features.add_module("norm5", nn.BatchNorm2d(c))
        self.classifier = nn.Linear(c, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = F.relu(self.features(x))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.classifier(x)


def densenet121(**kwargs):
    return DenseNet((6, 12, 24, 16), growth_rate=32, num_init_features=64, **kwargs)


def densenet_bc_cifar(depth=100, growth_rate=12, **kwargs):
    """DenseNet-BC for CIFAR: three blocks of (depth - 4) / 6 layers, 2k initial channels."""
    if depth < 10 or (depth - 4) % 6:
        raise ValueError(f"DenseNet-BC depth must be 6n+4 (10, 16, ..., 100); got {depth}")
    n = (depth - 4) // 6
    kwargs.setdefault("num_classes", 10)
    return DenseNet((n, n, n), growth_rate, 2 * growth_rate, stem="cifar", **kwargs)
