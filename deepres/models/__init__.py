from .blocks import BasicBlock, Bottleneck, PadShortcut, PreActBlock, make_shortcut
from .cifar import CifarNet, plain, resnet_cifar
from .resnet import ResNet, from_torchvision, resnet
from .vgg import CONFIGS as VGG_CONFIGS, VGG, make_features, vgg

__all__ = ["BasicBlock", "Bottleneck", "CifarNet", "PadShortcut", "PreActBlock", "ResNet", "VGG",
           "VGG_CONFIGS", "from_torchvision", "make_features", "make_shortcut", "plain", "resnet",
           "resnet_cifar", "vgg"]
from .densenet import DenseBlock, DenseLayer, DenseNet, Transition, densenet121, densenet_bc_cifar  # noqa: E402

__all__ += ["DenseBlock", "DenseLayer", "DenseNet", "Transition", "densenet121",
            "densenet_bc_cifar"]
