"""The architecture diagrams: labelled from the library's modules, and in every
chapter that builds an architecture, with alt text, in the built book."""
import re

import matplotlib
import pytest
from torch import nn

matplotlib.use("Agg")

from deepres import diagrams  # noqa: E402
from deepres.models import BasicBlock, Bottleneck, PreActBlock, plain, resnet_cifar  # noqa: E402

# chapter page: how many diagrams it draws (each with alt text that starts "Diagram:")
EXPECTED = {"01_vgg": 1, "02_degradation": 1, "03_residual": 2, "04_bottleneck": 1,
            "05_resnext": 1, "06_densenet": 1, "07_why": 1}


def texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_boxes_are_labelled_from_the_modules():
    assert diagrams.label(nn.Conv2d(16, 32, 3, stride=2)) == "3x3 conv, 32, /2"
    assert diagrams.label(nn.Conv2d(128, 128, 3, groups=32)) == "3x3 conv, 128\n32 groups"
    assert diagrams.block_layers(PreActBlock(16, 16)) == [
        "BN", "ReLU", "3x3 conv, 16", "BN", "ReLU", "3x3 conv, 16"]
    assert diagrams.block_layers(Bottleneck(256, 64))[::3] == [
        "1x1 conv, 64", "3x3 conv, 64", "1x1 conv, 256"]


def test_each_diagram_draws_the_module_it_is_given():
    option_a = diagrams.blocks([(BasicBlock(16, 32, stride=2, shortcut="A"), "A")])
    assert "take every 2nd pixel,\nadd 16 zero channels" in texts(option_a)
    option_b = diagrams.blocks([(BasicBlock(16, 32, stride=2, shortcut="B"), "B")])
    assert "1x1 conv, 32, /2\nBN" in texts(option_b)
    plain_block = diagrams.blocks([(BasicBlock(16, 16, shortcut=None), "plain")])
    assert "+" not in texts(plain_block)
    network = texts(diagrams.cifar_network(resnet_cifar(32), "ResNet-32"))
    assert sum(re.fullmatch(r"\d+\n\d+x\d+", t) is not None for t in network) == 15
    assert "64\n8x8" in network and "fc,\n10" in network
    assert any("no shortcuts" in t for t in texts(diagrams.cifar_network(plain(20), "p")))
    forms = texts(diagrams.resnext_forms(Bottleneck(256, 64, groups=32, width_per_group=4)))
    assert "3x3 conv, 128\n32 groups" in forms and "concatenate: 128" in forms
    dense = texts(diagrams.dense_block(*diagrams.small_dense_block(3, 16, 8)))
    assert "concatenate\n16 + 3 x 8\n= 40 ch" in dense
    assert any(t.startswith("2 x\n3x3 conv,\n64") for t in texts(diagrams.vgg_stack()))


@pytest.mark.parametrize("page", sorted(EXPECTED))
def test_each_chapter_shows_its_diagrams_with_alt_text(book, page):
    html = (book[2] / "chapters" / f"{page}.html").read_text()
    alts = re.findall(r'<img[^>]*\balt="(Diagram: [^"]{80,})"', html)
    assert len(alts) == EXPECTED[page], alts
    for src in re.findall(r'<img[^>]*\balt="Diagram: [^"]*"[^>]*\bsrc="([^"]+)"', html) + \
            re.findall(r'<img[^>]*\bsrc="([^"]+)"[^>]*\balt="Diagram: ', html):
        assert not src.startswith(("http:", "https:", "//")), "a diagram is hot-linked"
