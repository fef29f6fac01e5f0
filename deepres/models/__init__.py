from .vgg import CONFIGS as VGG_CONFIGS, VGG, make_features, vgg

__all__ = ["VGG", "VGG_CONFIGS", "make_features", "vgg"]
