import pytest
import torch
import torchvision
from torch import nn

from deepres.measure import count_flops, count_params, layer_costs
from deepres.models import VGG, VGG_CONFIGS, make_features, vgg

TORCHVISION_VGG16 = 138_357_544  # torchvision's documented parameter count


@pytest.mark.parametrize("name", sorted(VGG_CONFIGS))
def test_vgg_parameter_count_equals_torchvision(name):
    assert count_params(vgg(name)) == count_params(getattr(torchvision.models, name)())


def test_vgg16_count_is_the_documented_one():
    assert count_params(vgg("vgg16")) == TORCHVISION_VGG16


@pytest.mark.parametrize("batch_norm", [False, True])
def test_vgg_outputs_equal_torchvision_on_the_same_weights(batch_norm):
    ours = vgg("vgg11", batch_norm=batch_norm).eval()
    theirs = (torchvision.models.vgg11_bn if batch_norm else torchvision.models.vgg11)().eval()
    ours.load_state_dict(theirs.state_dict())  # same names, no mapping needed
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))


def test_small_vgg_shapes_and_kernel_size():
    model = VGG([8, "M", 16, "M"], num_classes=10, in_channels=1, hidden=32, pool_size=3,
                kernel_size=5)
    assert model(torch.randn(4, 1, 28, 28)).shape == (4, 10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(5, 5), (5, 5)]
    assert [c.padding for c in convs] == [(2, 2), (2, 2)]


def test_make_features_keeps_size_until_pool():
    features = make_features([4, 4, "M", 8], in_channels=2)
    assert features(torch.randn(1, 2, 10, 10)).shape == (1, 8, 5, 5)


@pytest.mark.parametrize("config", [[], ["M"], [0, "M"], [16, "X"], [3.5]])
def test_bad_configuration_is_refused(config):
    with pytest.raises(ValueError, match="VGG configuration"):
        VGG(config)


def test_unknown_vgg_name():
    with pytest.raises(ValueError, match="vgg11, vgg13, vgg16, vgg19"):
        vgg("vgg17")


def test_layer_costs_add_up_for_vgg16():
    model = vgg("vgg16")
    x = torch.randn(1, 3, 224, 224)
    rows = layer_costs(model, x)
    assert len(rows) == 16  # 13 convolutions and 3 fully connected layers
    assert sum(r["params"] for r in rows) == count_params(model)
    assert sum(r["flops"] for r in rows) == count_flops(model, x)
    first = rows[0]
    assert first["out_shape"] == (64, 224, 224)
    assert first["flops"] == 2 * 64 * 224 * 224 * 3 * 9  # 2 FLOPs per multiply-add
