"""deepres.course.figures: the HTML book's kernel-free interactive figures."""
import json
import re

import pytest

from deepres.course.figures import BOOK_ENV, InteractiveFigure, bars, curve_traces, curves_by_seed, line


def figure(**kw):
    states = {"a": [line("x", [1, 2], [3, 4])], "b": [line("x", [1, 2], [5, 6]),
                                                      line("y", [1, 2], [7, 8])]}
    args = dict(control_label="Pick", xlabel="step", ylabel="error (%)", caption="Cap.",
                alt="Alt text.")
    args.update(kw)
    return InteractiveFigure(states, **args)


def spec_of(html):
    return json.loads(re.search(r"var spec = (\{.*\});", html).group(1))


def test_every_state_is_in_the_page_and_only_the_first_is_visible():
    data, layout, visible = figure().figure()
    assert [t["visible"] for t in data] == [True, False, False]
    assert visible == [[True, False, False], [False, True, True]]
    assert layout["xaxis"]["title"]["text"] == "step"
    spec = spec_of(figure().html())
    assert spec["visible"] == visible and len(spec["data"]) == 3


def test_select_has_one_option_per_state_and_slider_one_step_per_state():
    html = figure().html()
    assert html.count("<option") == 2 and "<select" in html
    html = figure(control="slider").html()
    assert 'type="range"' in html and 'max="1"' in html and "<option" not in html


def test_alt_text_caption_and_labels_are_escaped():
    html = figure(alt='a "quoted" <b>alt</b>', caption="<script>x</script>").html()
    assert 'aria-label="a &quot;quoted&quot; &lt;b&gt;alt&lt;/b&gt;"' in html
    assert "<figcaption>&lt;script&gt;x&lt;/script&gt;</figcaption>" in html
    # a group, not an image: plotly draws buttons inside it, and an image's children are
    # not announced (axe: nested-interactive)
    assert 'role="group"' in html


def test_html_only_in_the_book_build(monkeypatch):
    monkeypatch.delenv(BOOK_ENV, raising=False)
    assert set(figure()._repr_mimebundle_()) == {"text/plain"}
    monkeypatch.setenv(BOOK_ENV, "1")
    bundle = figure()._repr_mimebundle_()
    assert "deepres-figure" in bundle["text/html"]


def test_same_figure_same_html():   # a rebuild does not change the page
    assert figure().html() == figure().html()


def test_log_axis_and_fixed_range():
    _, layout, _ = figure(log_y=True, y_range=(0, 5)).figure()
    assert layout["yaxis"]["type"] == "log" and layout["yaxis"]["range"] == [0, 5]
    assert "type" not in layout["xaxis"]     # categories (bars) need plotly's own guess


@pytest.mark.parametrize("bad", [dict(control="knob")])
def test_bad_arguments_are_named(bad):
    with pytest.raises(ValueError, match="control"):
        figure(**bad)
    with pytest.raises(ValueError, match="at least one state"):
        InteractiveFigure({}, control_label="", xlabel="", ylabel="", caption="", alt="")


class FakeRun:
    def __init__(self, name, shift):
        self.name = name
        self.history = {"step": [1, 2, 3], "error": [0.5, 0.4, 0.3 + shift],
                        "eval_step": [3], "test_error": [0.35 + shift]}


def test_curve_traces_and_curves_by_seed():
    traces = curve_traces([FakeRun("a", 0), FakeRun("b", 0.1)], window=1)
    assert [t["name"] for t in traces] == ["a: training batches", "a: test",
                                           "b: training batches", "b: test"]
    assert traces[1]["y"] == [35.0] and traces[2]["y"][-1] == pytest.approx(40.0)
    runs = {(n, s): FakeRun(n, s / 10) for n in ("a", "b") for s in (0, 1)}
    fig = curves_by_seed(runs, ["a", "b"], [0, 1], caption="c", alt="a")
    assert list(fig.states) == ["seed 0", "seed 1"]
    assert fig.states["seed 1"][1]["y"] == [pytest.approx(45.0)]


def test_bars_keep_category_labels():
    trace = bars("w", ["1x1", "3x3"], [1, 2])
    assert trace["type"] == "bar" and trace["x"] == ["1x1", "3x3"] and trace["y"] == [1.0, 2.0]
