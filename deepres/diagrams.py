"""Diagrams of the architectures, drawn with matplotlib from the library's own modules.

Each box is labelled from the module it stands for (a convolution's kernel, width,
stride and groups; BatchNorm; a shortcut's kind), so a diagram shows the block or
network the chapter builds, not a picture of one. The order of the layers is that of
the module's ``forward``, which is written out here (``BLOCK_ORDER``): PyTorch keeps the
modules, not the order the code applies them in, nor the functional ReLUs.

Every chapter gives its diagram alt text in the cell's metadata (``mystnb: image: alt``).
"""
import matplotlib.pyplot as plt
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch
from torch import nn

from .models.blocks import BasicBlock, Bottleneck, PadShortcut, PreActBlock
from .models.densenet import DenseBlock, Transition
from .models.vgg import CONFIGS

COLORS = {"conv": "#c6dbef", "BN": "#fdd0a2", "ReLU": "#c7e9c0", "pool": "#dadaeb",
          "fc": "#fcbba1", "shortcut": "#f0f0f0", "other": "#ffffff"}
# The order in which each block's forward applies its modules ("relu": F.relu).
BLOCK_ORDER = {
    BasicBlock: ["conv1", "bn1", "relu", "conv2", "bn2"],          # then add, then ReLU
    PreActBlock: ["bn1", "relu", "conv1", "bn2", "relu", "conv2"],   # then add
    Bottleneck: ["conv1", "bn1", "relu", "conv2", "bn2", "relu", "conv3", "bn3"],
}
RELU_AFTER_ADD = {BasicBlock: True, PreActBlock: False, Bottleneck: True}


def label(module):
    """A box's text for one module."""
    if isinstance(module, nn.Conv2d):
        k = module.kernel_size[0]
        text = f"{k}x{k} conv, {module.out_channels}"
        if module.stride[0] > 1:
            text += f", /{module.stride[0]}"
        if module.groups > 1:
            text += f"\n{module.groups} groups"
        return text
    if isinstance(module, nn.BatchNorm2d):
        return "BN"
    if isinstance(module, nn.ReLU):
        return "ReLU"
    if isinstance(module, nn.Linear):
        return f"fc, {module.out_features}"
    if isinstance(module, (nn.AvgPool2d, nn.MaxPool2d)):
        kind = "avg" if isinstance(module, nn.AvgPool2d) else "max"
        return f"2x2 {kind} pool"
    if isinstance(module, PadShortcut):
        return f"take every {module.stride}nd pixel,\nadd {module.extra} zero channels"
    if isinstance(module, nn.Identity):
        return "identity"
    if isinstance(module, nn.Sequential):
        return "\n".join(label(m) for m in module)
    return type(module).__name__


def _kind(text):
    for key in ("conv", "BN", "ReLU", "pool", "fc"):
        if key in text:
            return key
    return "other"


def _box(ax, x, y, text, w=1.9, h=0.52, color=None):
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.03",
                                facecolor=color or COLORS[_kind(text)], edgecolor="#333333"))
    ax.text(x, y, text, ha="center", va="center", fontsize=8)


def _arrow(ax, start, end, **style):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=10,
                                 color="#333333", shrinkA=0, shrinkB=0, **style))


def _plus(ax, x, y, sign="+"):
    ax.add_patch(Circle((x, y), 0.17, facecolor="white", edgecolor="#333333"))
    ax.text(x, y, sign, ha="center", va="center", fontsize=10)


def _finish(ax, width, height):
    ax.set_xlim(-width / 2, width / 2)
    ax.set_ylim(-height, 0.6)
    ax.set_aspect("equal")
    ax.axis("off")


def block_layers(block):
    """The labels of a block's residual branch (or plain path), in its forward's order."""
    order = BLOCK_ORDER[type(block)]
    return ["ReLU" if name == "relu" else label(getattr(block, name)) for name in order]


def draw_block(ax, block, title):
    """One block, top to bottom: x, the layers, the addition with its shortcut (if
    any), and what follows the addition."""
    layers, step = block_layers(block), 0.75
    _box(ax, 0, 0, "x", w=0.6, color="white")
    y = 0.0
    for text in layers:
        _arrow(ax, (0, y - 0.26), (0, y - step + 0.26))
        y -= step
        _box(ax, 0, y, text)
    shortcut = getattr(block, "shortcut", None)
    if shortcut is not None:
        _arrow(ax, (0, y - 0.26), (0, y - step + 0.17))
        y -= step
        _plus(ax, 0, y)
        side = 1.75
        ax.plot([0.3, side, side], [0, 0, y], color="#333333", lw=1)
        _arrow(ax, (side, y), (0.17, y))
        ax.text(side + 0.05, y / 2, label(shortcut), rotation=90, ha="left", va="center",
                fontsize=7.5, bbox=dict(facecolor=COLORS["shortcut"], edgecolor="#999999",
                                        boxstyle="round,pad=0.2"))
        after = 0.17
    else:
        after = 0.26
    if RELU_AFTER_ADD[type(block)]:
        _arrow(ax, (0, y - after), (0, y - step + 0.26))
        y -= step
        _box(ax, 0, y, "ReLU")
        after = 0.26
    _arrow(ax, (0, y - after), (0, y - 0.6))
    ax.text(0, y - 0.75, "output", ha="center", va="top", fontsize=8)
    ax.set_title(title, fontsize=9)
    _finish(ax, 4.4, -y + 1.1)


def blocks(panels, height=None):
    """A figure of blocks side by side: ``panels`` is a list of (block, title)."""
    depth = max(len(BLOCK_ORDER[type(b)]) for b, _ in panels) + 3
    fig, axes = plt.subplots(1, len(panels), figsize=(2.5 * len(panels), height or 0.62 * depth))
    for ax, (block, title) in zip(getattr(axes, "flat", [axes]), panels):
        draw_block(ax, block, title)
    fig.tight_layout()
    return fig


def vgg_stack(name="vgg16", size=224):
    """VGG's configuration table as a row of stages: the convolutions of each stage, its
    max pool, and the classifier, with the feature map's size under each stage."""
    stages, convs = [], []
    for item in CONFIGS[name]:
        if item == "M":
            stages.append(convs)
            convs = []
        else:
            convs.append(item)
    fig, ax = plt.subplots(figsize=(12, 2.6))
    x = 0.0
    _box(ax, x, 0, f"image\n{size}x{size}", w=1.1, h=1.0, color="white")
    for convs in stages:
        x += 1.55
        _arrow(ax, (x - 1.0, 0), (x - 0.55, 0))
        _box(ax, x, 0, f"{len(convs)} x\n3x3 conv,\n{convs[0]}", w=1.1, h=1.0)
        ax.text(x, -0.7, f"{size}x{size}", ha="center", fontsize=8)
        size //= 2
        x += 1.2
        _arrow(ax, (x - 0.65, 0), (x - 0.45, 0))
        _box(ax, x, 0, "max\npool", w=0.8, h=1.0, color=COLORS["pool"])
    for text in ("fc, 4096", "fc, 4096", "fc, 1000"):
        x += 1.4
        _arrow(ax, (x - 0.85, 0), (x - 0.55, 0))
        _box(ax, x, 0, text.replace(", ", ",\n"), w=1.0, h=1.0)
    ax.text(x, -0.7, "classifier", ha="center", fontsize=8)
    ax.set_xlim(-0.7, x + 0.7)
    ax.set_ylim(-1.0, 0.8)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(f"{name.upper()}: every convolution 3x3 (with ReLU), a max pool halves "
                 f"the map after each stage", fontsize=9)
    fig.tight_layout()
    return fig


def cifar_network(model, title):
    """A CIFAR network of He et al. §4.2 (``deepres.models.cifar``) as a row: the first
    convolution, every block (an arc over it where it has a shortcut, dashed where the
    shortcut changes the shape), global average pooling and the classifier."""
    n = len(model.blocks)
    fig, ax = plt.subplots(figsize=(1.1 * n + 4, 2.6))
    _box(ax, -0.2, 0, label(model.conv).replace(", ", ",\n"), w=1.1, h=1.0)
    x, size = 0.0, 32
    for block in model.blocks:
        x += 1.1
        _arrow(ax, (x - 0.75 if x < 1.2 else x - 0.72, 0), (x - 0.38, 0))
        conv = block.conv1
        if conv.stride[0] > 1:
            size //= conv.stride[0]
        _box(ax, x, 0, f"{conv.out_channels}\n{size}x{size}", w=0.76, h=1.0,
             color=COLORS["conv"])
        if getattr(block, "shortcut", None) is not None:
            reshapes = not isinstance(block.shortcut, nn.Identity)
            ax.add_patch(FancyArrowPatch((x - 0.42, 0.5), (x + 0.42, 0.5),
                                         connectionstyle="arc3,rad=-0.6", arrowstyle="-|>",
                                         mutation_scale=8, color="#d62728",
                                         ls="--" if reshapes else "-"))
    for text, w in (("global\navg pool", 1.0), (label(model.fc).replace(", ", ",\n"), 0.9)):
        x += 1.25
        _arrow(ax, (x - 0.8, 0), (x - w / 2, 0))
        _box(ax, x, 0, text, w=w, h=1.0)
    shortcuts = any(getattr(b, "shortcut", None) is not None for b in model.blocks)
    ax.text(0.55 * (1 + n), -0.75, f"{n} blocks of two 3x3 convolutions (width and map "
            f"size in each box)" + ("; red arcs: shortcuts, dashed where the shape changes"
                                    if shortcuts else "; no shortcuts"),
            ha="center", fontsize=8)
    ax.set_xlim(-0.9, x + 0.7)
    ax.set_ylim(-1.0, 1.3)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


# The layout of resnext_forms, in the axes' units: one layer a unit down from the input.
HALF_LAYER = 0.26        # half a layer box's height (_box's h = 0.52)
HALF_PATH_BOX = 0.25     # half the height of a path's box (h = 0.5)
RADIUS = 0.17            # the addition's circle (_plus)
PATH_XS = (-1.75, -0.6, 1.75)   # the paths drawn: the first two and the last ("...")
ADD_GAP = 0.9            # from the last layer down to the addition
IDENTITY_X = 2.45        # where the identity runs down, right of the block


def _grouped_form(ax, c, d, c_out):
    """Form (c): one 1x1, one grouped 3x3, one 1x1. Returns the last layer's height."""
    layers = [f"1x1 conv, {c * d}", f"3x3 conv, {c * d}\n{c} groups", f"1x1 conv, {c_out}"]
    for i, text in enumerate(layers):
        _box(ax, 0, -1 - i, text)
        top = -0.2 if i == 0 else -i - HALF_LAYER   # from the input, or the layer above
        _arrow(ax, (0, top), (0, -1 - i + HALF_LAYER))
    return -len(layers)


def _path_forms(ax, form, c, d, c_out):
    """Forms (a) and (b): C paths of a 1x1 and a 3x3 (and, in (a), a 1x1 each), summed in
    (a), concatenated then one 1x1 in (b). Returns the height the addition hangs from."""
    rows = [f"1x1, {d}", f"3x3, {d}"] + ([f"1x1, {c_out}"] if form == "a" else [])
    for x in PATH_XS:
        for i, text in enumerate(rows):
            _box(ax, x, -1 - i, text, w=0.85, h=2 * HALF_PATH_BOX, color=COLORS["conv"])
            if i:
                _arrow(ax, (x, -i - HALF_PATH_BOX), (x, -1 - i + HALF_PATH_BOX))
        _arrow(ax, (0, -0.2), (x, -1 + HALF_PATH_BOX))
    ax.text(0.58, -1 - (len(rows) - 1) / 2, ". . .", ha="center", fontsize=12)
    ax.text(1.0, -0.45, f"{c} paths", ha="left", fontsize=8)
    y = -1 - len(rows)   # where the paths meet
    for x in PATH_XS:
        _arrow(ax, (x, y + 1 - HALF_PATH_BOX), (0, y + (RADIUS if form == "a" else HALF_LAYER)))
    if form == "a":   # the paths and the identity meet in one addition
        return y + ADD_GAP
    _box(ax, 0, y, f"concatenate: {c * d}")
    _box(ax, 0, y - 1, f"1x1 conv, {c_out}")
    _arrow(ax, (0, y - HALF_LAYER), (0, y - 1 + HALF_LAYER))
    return y - 1


def resnext_forms(block):
    """The three equivalent forms of a ResNeXt block (Xie et al., Figure 3), with the
    cardinality and widths of ``block``, a grouped :class:`Bottleneck`: (a) C paths,
    summed; (b) C paths' 3x3 outputs concatenated, one 1x1; (c) one grouped 3x3."""
    c = block.conv2.groups
    d = block.conv2.out_channels // c
    c_in, c_out = block.conv1.in_channels, block.conv3.out_channels
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.2))
    for ax, form in zip(axes, "abc"):
        last = _grouped_form(ax, c, d, c_out) if form == "c" else \
            _path_forms(ax, form, c, d, c_out)
        add = last - ADD_GAP
        _box(ax, 0, 0, f"x: {c_in} channels", w=1.9, h=0.4, color="white")
        _plus(ax, 0, add)
        if form != "a":
            _arrow(ax, (0, last - HALF_LAYER), (0, add + RADIUS))
        ax.plot([0.95, IDENTITY_X, IDENTITY_X], [0, 0, add], color="#333333", lw=1)
        _arrow(ax, (IDENTITY_X, add), (RADIUS, add))
        ax.text(IDENTITY_X + 0.05, add / 2, "identity", rotation=90, fontsize=7.5,
                va="center")
        ax.set_title({"a": f"(a) {c} paths, summed", "b": "(b) paths concatenated",
                      "c": "(c) grouped convolution"}[form], fontsize=9)
        ax.set_xlim(-2.7, 2.9)
        ax.set_ylim(-5.9, 0.5)
        ax.set_aspect("equal")
        ax.axis("off")
    fig.suptitle(f"One ResNeXt block ({c}x{d}d), three equivalent forms (a k x k conv "
                 f"to n channels is written \"k x k, n\").\nEvery conv is followed by BN, "
                 f"and by a ReLU except the last 1x1, whose ReLU comes after the addition",
                 fontsize=9)
    fig.tight_layout()
    return fig


def dense_block(block, transition):
    """A dense block (``DenseBlock``) and the transition after it: each layer reads the
    concatenation of the block's input and every earlier layer's output. Each feature map
    has a bus line of its own; a dot marks where a later layer's concatenation (C) taps it."""
    layers = list(block.values())
    k = layers[0].conv2.out_channels
    c0 = layers[0].norm1.num_features
    n = len(layers)
    fig, ax = plt.subplots(figsize=(2.0 * n + 4.5, 3.9))
    xs = [1.9 * i for i in range(n + 1)]
    nodes = [x - 0.95 for x in xs]                    # layer i's C node, left of x_i
    lane = [-0.6 - 0.12 * j for j in range(n)]        # the bus line of x_j
    node_y = lane[-1] - 0.45
    line = dict(color="#2171b5", lw=0.9)
    for j in range(n):   # x_j down to its bus line, which runs to the last layer's node
        ax.plot([xs[j] + 0.2, xs[j] + 0.2, nodes[n]], [-0.4, lane[j], lane[j]], **line)
    for i in range(1, n + 1):
        x, node = xs[i], nodes[i]
        ax.plot([node] * i, lane[:i], "o", ms=3, color=line["color"])   # the taps
        ax.add_patch(FancyArrowPatch((node, lane[0]), (node, node_y + 0.17), arrowstyle="-|>",
                                     mutation_scale=8, shrinkA=0, shrinkB=0, **line))
        _plus(ax, node, node_y, sign="C")
        top = node_y - 0.5
        _box(ax, node, top - 0.55, f"H{i}: BN, ReLU,\n1x1 conv, "
             f"{layers[i - 1].conv1.out_channels}\nBN, ReLU,\n3x3 conv, {k}",
             w=1.5, h=1.1, color=COLORS["conv"])
        _arrow(ax, (node, node_y - 0.17), (node, top))
        _arrow(ax, (x - 0.25, top), (x - 0.25, -0.4))   # H_i's output: the feature map x_i
    for i, x in enumerate(xs):   # x0 .. xn, drawn over the lines
        _box(ax, x, 0, f"x{i}\n{c0 if i == 0 else k} ch", w=0.8, h=0.8, color="#ffffcc")
    end = xs[-1] + 2.3
    total = c0 + n * k
    for x in xs:
        ax.add_patch(FancyArrowPatch((x, 0.4), (end - 1.0, 0.2), arrowstyle="-|>",
                                     mutation_scale=8, color="#999999", lw=0.8,
                                     connectionstyle="arc3,rad=-0.15"))
    _box(ax, end, 0, f"concatenate\n{c0} + {n} x {k}\n= {total} ch", w=1.6, h=0.9,
         color="white")
    _box(ax, end, node_y - 1.05, "transition:\n" + ",\n".join(label(m) for m in transition),
         w=1.8, h=1.3, color=COLORS["pool"])
    _arrow(ax, (end, -0.45), (end, node_y - 0.4))
    ax.set_xlim(-0.8, end + 1.1)
    ax.set_ylim(node_y - 1.8, 1.0)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(f"A dense block of {n} layers (growth rate k = {k}), then a transition; "
                 f"C: the feature maps concatenated along their channels", fontsize=9)
    fig.tight_layout()
    return fig


def small_dense_block(n_layers=4, c_in=24, growth_rate=12):
    """The dense block and the transition the chapter's diagram shows (DenseNet-BC's)."""
    block = DenseBlock(n_layers, c_in, growth_rate)
    total = c_in + n_layers * growth_rate
    return block, Transition(total, total // 2)
