"""The few plots the chapters share. Every function returns the matplotlib Figure."""
import matplotlib.pyplot as plt
import numpy as np


def smooth(values, window):
    """Moving average over ``window`` steps (shorter at the start)."""
    values = np.asarray(values, dtype=float)
    if window <= 1 or len(values) == 0:
        return values
    cumsum = np.cumsum(np.insert(values, 0, 0.0))
    out = np.empty_like(values)
    for i in range(len(values)):
        lo = max(0, i + 1 - window)
        out[i] = (cumsum[i + 1] - cumsum[lo]) / (i + 1 - lo)
    return out


def training_curves(runs, title="", window=50, ax=None):
    """Error in percent against the iteration, for each :class:`deepres.Run`: on the
    training batches (line: training mode, smoothed over ``window`` steps), on the fixed
    training subset in evaluation mode (crosses) and on the test set (dots, dashed)."""
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7, 4))
    for i, run in enumerate(runs):
        color = f"C{i}"
        h = run.history
        ax.plot(h["step"], 100 * smooth(h["error"], window), color=color, lw=1.5,
                alpha=0.6, label=f"{run.name}: training batches")
        ax.plot(h["eval_step"], [100 * e for e in h["train_error"]], "x", color=color,
                ms=6, mew=1.5)
        ax.plot(h["eval_step"], [100 * e for e in h["test_error"]], "o--", color=color,
                ms=4, lw=1, label=f"{run.name}: test")
    ax.plot([], [], "x", color="gray", label="x: training subset, eval mode")
    ax.set_xlabel("iteration")
    ax.set_ylabel("error (%)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def cost_shares(rows, title=""):
    """Two bar charts of where the parameters and the FLOPs are, layer by layer, as a
    percentage of the total; ``rows`` come from :func:`deepres.measure.layer_costs`."""
    names = [r["name"] for r in rows]
    params = np.array([r["params"] for r in rows], dtype=float)
    flops = np.array([r["flops"] for r in rows], dtype=float)
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.28 * len(rows) + 1.5), sharey=True)
    for ax, values, what in ((axes[0], params, "parameters"), (axes[1], flops, "FLOPs")):
        colors = ["C1" if r["kind"] == "Linear" else "C0" for r in rows]
        ax.barh(range(len(rows)), 100 * values / values.sum(), color=colors)
        ax.set_xlabel(f"share of all {what} (%)")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(rows)), names, fontsize=8)
    axes[0].invert_yaxis()
    axes[0].set_ylabel("layer (blue: convolution, orange: fully connected)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


DATASET_TITLES = {"fashion-mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}


def dataset_title(data):
    """The dataset's usual name, e.g. 'CIFAR-10', for titles and text."""
    return DATASET_TITLES.get(data.name, data.name)


def class_examples(data):
    """The first training image of each class, with the class name above it: grey images
    in grey levels, colour images in colour (each rescaled to its own range, since the
    images are normalised)."""
    fig, axes = plt.subplots(1, len(data.classes), figsize=(12, 1.7), squeeze=False)
    for label, ax in enumerate(axes[0]):
        index = int((data.y_train == label).nonzero()[0, 0])
        image = data.x_train[index].permute(1, 2, 0).float()
        image = (image - image.min()) / (image.max() - image.min()).clamp(min=1e-12)
        if image.shape[-1] == 1:
            ax.imshow(image.squeeze(-1).numpy(), cmap="gray")
        else:
            ax.imshow(image.numpy())
        ax.set_title(data.classes[label], fontsize=8)
        ax.axis("off")
    fig.suptitle(dataset_title(data), fontsize=9)
    fig.tight_layout()
    return fig
