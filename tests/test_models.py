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


# --- residual networks ---------------------------------------------------------

from deepres.models import (BasicBlock, PadShortcut, from_torchvision, plain, resnet,
                            resnet_cifar)

TABLE6 = {20: 0.27, 32: 0.46, 44: 0.66, 56: 0.85, 110: 1.7}  # millions; He et al., Table 6


@pytest.mark.parametrize("depth", sorted(TABLE6))
def test_cifar_resnet_counts_match_table_6(depth):
    count = count_params(resnet_cifar(depth))
    assert round(count / 1e6, 2 if depth < 110 else 1) == TABLE6[depth]
    assert count_params(plain(depth)) == count  # option A adds no parameters


@pytest.mark.parametrize("depth", [20, 56])
def test_plain_and_residual_share_one_code_path(depth):
    a, b = plain(depth), resnet_cifar(depth)
    assert [type(m) for m in a.modules() if not isinstance(m, (nn.Identity, PadShortcut))] == \
           [type(m) for m in b.modules() if not isinstance(m, (nn.Identity, PadShortcut))]
    assert all(block.shortcut is None for block in a.blocks)
    assert sum(isinstance(m, nn.Conv2d) for m in a.modules()) == depth - 1  # + 1 fc = depth


def test_cifar_net_on_small_grey_images():
    model = plain(20, widths=(8, 16, 32), in_channels=1)
    assert model(torch.randn(3, 1, 14, 14)).shape == (3, 10)


@pytest.mark.parametrize("depth", [0, 19, 21])
def test_cifar_net_refuses_a_depth_that_is_not_6n_plus_2(depth):
    with pytest.raises(ValueError, match="6n\\+2"):
        resnet_cifar(depth)


def test_unknown_shortcut_is_refused():
    with pytest.raises(ValueError, match="shortcut must be one of"):
        BasicBlock(8, 8, shortcut="D")


def test_option_a_pads_zeros_and_subsamples():
    x = torch.randn(2, 4, 6, 6)
    y = PadShortcut(4, 10, 2)(x)
    assert y.shape == (2, 10, 3, 3)
    assert torch.equal(y[:, :4], x[:, :, ::2, ::2]) and not y[:, 4:].any()


@pytest.mark.parametrize("shortcut, projections", [("A", 0), ("B", 2), ("C", 9)])
def test_shortcut_options(shortcut, projections):
    model = resnet_cifar(20, shortcut=shortcut)
    n = sum(isinstance(b.shortcut, nn.Sequential) for b in model.blocks)
    assert n == projections


def test_zero_init_makes_every_block_the_identity():
    block = BasicBlock(8, 8, shortcut="A")
    nn.init.zeros_(block.last_bn().weight)
    x = torch.relu(torch.randn(4, 8, 6, 6))  # a block's input is a ReLU's output
    assert torch.equal(block(x), x)
    model = resnet_cifar(20, zero_init_residual=True)
    assert all(not b.bn2.weight.any() for b in model.blocks)


@pytest.mark.parametrize("name, count", [("resnet18", 11_689_512), ("resnet34", 21_797_672)])
def test_imagenet_resnet_equals_torchvision(name, count):
    ours, theirs = resnet(name).eval(), getattr(torchvision.models, name)().eval()
    assert count_params(ours) == count_params(theirs) == count
    ours.load_state_dict(from_torchvision(theirs.state_dict()))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))


def test_unknown_resnet():
    with pytest.raises(ValueError, match="resnet18"):
        resnet("resnet19")


# --- bottlenecks, ResNeXt, DenseNet ----------------------------------------------

from deepres.models import Bottleneck, DenseBlock, DenseNet, densenet121, densenet_bc_cifar

TORCHVISION_COUNTS = {"resnet50": 25_557_032, "resnet101": 44_549_160,
                      "resnet152": 60_192_808, "resnext50_32x4d": 25_028_904}


@pytest.mark.parametrize("name", sorted(TORCHVISION_COUNTS))
def test_bottleneck_networks_equal_torchvision(name):
    ours, theirs = resnet(name).eval(), getattr(torchvision.models, name)().eval()
    assert count_params(ours) == count_params(theirs) == TORCHVISION_COUNTS[name]
    ours.load_state_dict(from_torchvision(theirs.state_dict()))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))


def test_resnext_blocks_are_grouped_by_cardinality():
    model = resnet("resnext50_32x4d")
    blocks = [m for m in model.modules() if isinstance(m, Bottleneck)]
    assert len(blocks) == 16
    for block in blocks:
        assert block.conv2.groups == 32
        assert block.conv2.in_channels == 32 * 4 * block.conv3.out_channels // 256
        assert block.conv1.groups == block.conv3.groups == 1


def test_stride_placement_changes_flops_not_parameters():
    x = torch.randn(1, 3, 224, 224)
    v15, v1 = resnet("resnet50"), resnet("resnet50", stride_in_1x1=True)
    assert count_params(v15) == count_params(v1)
    assert count_flops(v1, x) < count_flops(v15, x)
    assert round(count_flops(v15, x) / 2e9, 2) == 4.09  # torchvision's documented GFLOPS


def test_bottleneck_shapes():
    block = Bottleneck(64, 64, stride=2)
    assert block(torch.randn(2, 64, 8, 8)).shape == (2, 256, 4, 4)
    assert Bottleneck(256, 64)(torch.randn(1, 256, 4, 4)).shape == (1, 256, 4, 4)


def test_densenet121_equals_torchvision():
    ours, theirs = densenet121().eval(), torchvision.models.densenet121().eval()
    assert count_params(ours) == count_params(theirs) == 7_978_856
    ours.load_state_dict(theirs.state_dict())  # same names
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))


def test_dense_block_grows_by_growth_rate():
    block = DenseBlock(n_layers=5, c_in=16, growth_rate=12)
    assert block(torch.randn(2, 16, 8, 8)).shape == (2, 16 + 5 * 12, 8, 8)


@pytest.mark.parametrize("mode", [True, "bottleneck"])
def test_memory_efficient_densenet_gives_same_outputs_and_gradients(mode):
    torch.manual_seed(0)
    plain_net = densenet_bc_cifar(40, growth_rate=6, in_channels=1)
    efficient = densenet_bc_cifar(40, growth_rate=6, in_channels=1, memory_efficient=mode)
    efficient.load_state_dict(plain_net.state_dict())
    x = torch.randn(4, 1, 14, 14)
    out_a, out_b = plain_net(x), efficient(x)
    assert torch.allclose(out_a, out_b, atol=1e-5)
    out_a.square().sum().backward()
    out_b.square().sum().backward()
    for (name, p), q in zip(plain_net.named_parameters(), efficient.parameters()):
        assert q.grad is not None, name
        assert torch.allclose(p.grad, q.grad, atol=1e-5), name


def test_densenet_bc_cifar_count_and_bad_depth():
    assert round(count_params(densenet_bc_cifar(100)) / 1e6, 1) == 0.8  # Huang et al., Table 2
    with pytest.raises(ValueError, match="6n\\+4"):
        densenet_bc_cifar(99)
    with pytest.raises(ValueError, match="stem"):
        DenseNet(stem="tiny")
    with pytest.raises(ValueError, match="memory_efficient"):
        densenet_bc_cifar(40, memory_efficient="yes")


def test_grad_norms_do_not_underflow_to_zero():
    """A float32 norm of gradients of about 1e-25 squares them below float32's range and
    returns 0; layer_grad_norms must still see them."""
    from deepres.measure import layer_grad_norms
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 10))
    x, y = torch.full((4, 1, 4, 4), 1e-25), torch.arange(4)
    nn.init.zeros_(model[1].weight)
    norms = layer_grad_norms(model, x, y)
    model(x).sum().backward()
    assert model[1].weight.grad.norm().item() == 0.0  # what float32 gives
    assert 1e-27 < norms[0] < 1e-23


def test_output_stds_follow_the_forward_order():
    from deepres.measure import output_stds
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 3), nn.Flatten(),
                          nn.Linear(8, 3))
    for m in model:
        if hasattr(m, "weight"):
            nn.init.constant_(m.weight, 0.5)
            nn.init.zeros_(m.bias)
    x = torch.randn(5, 1, 6, 6)
    stds = output_stds(model, x)
    want = [model[0](x).std().item(), model[:3](x).std().item(), model(x).std().item()]
    assert stds == pytest.approx(want, rel=1e-5)
    blocks = output_stds(model, x, modules=[model[2]])
    assert blocks == pytest.approx(want[1:2], rel=1e-5)


def test_step_seconds_times_each_model():
    from deepres.measure import step_seconds
    models = [nn.Linear(4, 2), nn.Sequential(nn.Linear(4, 64), nn.Linear(64, 2))]
    times = step_seconds(models, torch.randn(8, 4), repeats=3)
    assert len(times) == 2 and all(t > 0 for t in times)


def test_saved_bytes_counts_what_the_backward_pass_keeps():
    """A ReLU network of one Linear layer keeps the Linear's input (x, 4 x 8 floats) and
    the ReLU's output (4 x 3 floats); its weights are not counted. A dense block keeps
    quadratically more the more layers it has, and checkpointing keeps less."""
    from deepres.measure import saved_bytes
    model = nn.Sequential(nn.Linear(8, 3), nn.ReLU())
    assert saved_bytes(model, torch.randn(4, 8)) == 4 * (4 * 8 + 4 * 3)
    x = torch.randn(2, 3, 16, 16)
    kept = {depth: saved_bytes(densenet_bc_cifar(depth, growth_rate=12), x)
            for depth in (40, 70, 100)}
    layers = {40: 6, 70: 11, 100: 16}
    assert kept[100] / kept[40] > 1.2 * layers[100] / layers[40]   # more than linear
    assert (saved_bytes(densenet_bc_cifar(40, growth_rate=12, memory_efficient=True), x)
            < saved_bytes(densenet_bc_cifar(40, growth_rate=12, memory_efficient="bottleneck"), x)
            < kept[40])
