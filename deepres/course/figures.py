"""Figures a reader of the static HTML book can change, with no kernel behind the page.

Every state of the figure is computed when the page runs; a plain HTML control (a slider
or a drop-down list) chooses which state plotly.js shows. The book serves plotly.js from
its own site (``_ext/offline.py``), so a page with a figure needs no network and no kernel.

In a notebook, outside the book build, the figure shows as a line of text: there, the
chapter's ipywidgets do the same job with a live kernel (and the learner notebooks leave
these cells out; their tag is ``book-only``).
"""
import hashlib
import html
import json
import os

from ..plots import smooth

BOOK_ENV = "DEEPRES_BOOK_HTML"   # set by the book build (_ext/offline.py) for its kernels


def curve_traces(runs, window=50):
    """Traces of the error (%) against the iteration for each :class:`deepres.Run`: a
    smoothed line over the training batches, dots on the test set (as in
    :func:`deepres.plots.training_curves`)."""
    traces = []
    for i, run in enumerate(runs):
        h = run.history
        color = COLORS[i % len(COLORS)]
        traces.append(line(f"{run.name}: training batches", h["step"],
                           100 * smooth(h["error"], window), color=color, opacity=0.6))
        traces.append(line(f"{run.name}: test", h["eval_step"],
                           [100 * e for e in h["test_error"]], color=color, dash="dash",
                           markers=True))
    return traces


def curves_by_seed(runs, names, seeds, caption, alt, window=50):
    """Training curves of the networks ``names`` (``runs[name, seed]``), one seed at a
    time, behind a drop-down list of the seeds."""
    states = {f"seed {s}": curve_traces([runs[n, s] for n in names], window) for s in seeds}
    return InteractiveFigure(states, control_label="Seed", xlabel="iteration",
                             ylabel="error (%)", caption=caption, alt=alt)


COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]


def line(name, x, y, color=None, dash=None, markers=False, opacity=1.0):
    """One plotly scatter trace (a line, with markers if asked)."""
    return {"type": "scatter", "name": name, "x": [float(v) for v in x],
            "y": [float(v) for v in y], "mode": "lines+markers" if markers else "lines",
            "opacity": opacity, "line": {"color": color, "dash": dash or "solid"}}


def bars(name, x, y, color=None):
    """One plotly bar trace."""
    return {"type": "bar", "name": name, "x": list(x), "y": [float(v) for v in y],
            "marker": {"color": color}}


class InteractiveFigure:
    """States (a dict: label -> list of traces) behind one control. Shown by Jupyter."""

    def __init__(self, states, *, control_label, xlabel, ylabel, caption, alt,
                 title="", log_x=False, log_y=False, control="select", y_range=None):
        if not states:
            raise ValueError("an interactive figure needs at least one state")
        if control not in ("select", "slider"):
            raise ValueError(f"control must be 'select' or 'slider', not {control!r}")
        self.states = {str(k): v for k, v in states.items()}
        self.control, self.control_label = control, control_label
        self.caption, self.alt, self.title = caption, alt, title
        self.axes = {"xaxis": _axis(xlabel, log_x), "yaxis": _axis(ylabel, log_y, y_range)}

    def figure(self):
        """The plotly data and layout, every state's traces, the first state visible."""
        data, owner = [], []
        for i, traces in enumerate(self.states.values()):
            for trace in traces:
                data.append(dict(trace, visible=i == 0))
                owner.append(i)
        layout = {"title": {"text": self.title}, "margin": {"t": 40 if self.title else 10},
                  "height": 380, "legend": {"font": {"size": 11}}, **self.axes}
        visible = [[o == i for o in owner] for i in range(len(self.states))]
        return data, layout, visible

    def html(self):
        data, layout, visible = self.figure()
        spec = json.dumps({"data": data, "layout": layout, "visible": visible},
                          separators=(",", ":"))
        uid = "deepres-fig-" + hashlib.sha1(spec.encode()).hexdigest()[:10]
        labels = list(self.states)
        if self.control == "slider":
            control = (f'<input type="range" id="{uid}-c" min="0" max="{len(labels) - 1}" '
                       f'step="1" value="0"> <output id="{uid}-o">{html.escape(labels[0])}'
                       "</output>")
        else:
            options = "".join(f'<option value="{i}">{html.escape(s)}</option>'
                              for i, s in enumerate(labels))
            control = f'<select id="{uid}-c">{options}</select>'
        return f"""<figure class="deepres-figure" id="{uid}">
<div class="deepres-control"><label for="{uid}-c">{html.escape(self.control_label)}</label>
{control}</div>
<div class="deepres-plot" role="group" aria-label="{html.escape(self.alt)}"></div>
<figcaption>{html.escape(self.caption)}</figcaption>
</figure>
<script>
document.addEventListener("DOMContentLoaded", function () {{
  var spec = {spec};
  var labels = {json.dumps(labels)};
  var root = document.getElementById("{uid}");
  var plot = root.querySelector(".deepres-plot");
  var control = document.getElementById("{uid}-c");
  var shown = document.getElementById("{uid}-o");
  Plotly.newPlot(plot, spec.data, spec.layout, {{responsive: true, displaylogo: false}});
  control.addEventListener("input", function () {{
    var i = Number(control.value);
    if (shown) shown.textContent = labels[i];
    Plotly.restyle(plot, {{visible: spec.visible[i]}});
  }});
}});
</script>"""

    def _repr_mimebundle_(self, include=None, exclude=None):
        text = (f"[An interactive figure in the published book: {self.caption} "
                "In a notebook, use the widget of this section instead.]")
        if os.environ.get(BOOK_ENV):
            return {"text/html": self.html(), "text/plain": text}
        return {"text/plain": text}


def _axis(title, log, value_range=None):
    axis = {"title": {"text": title}, "gridcolor": "#e5e5e5"}   # plotly guesses the type
    if log:
        axis["type"] = "log"
    if value_range is not None:
        axis["range"] = list(value_range)
    return axis
