"""A book that needs nothing from outside its own site.

- MathJax and plotly.js come from ``vendor/node_modules`` (pinned in ``vendor/package.json``,
  installed by ``make setup``) and are copied into ``_static/lib`` of the build.
- The Jupyter widget manager and RequireJS are not loaded: the kernel widgets stay in the
  notebooks, and the HTML has its own kernel-free figures (``deepres/course/figures.py``). Their
  outputs are removed from the pages (the widget cells carry ``remove-output``).
- Thebe is not loaded: no page uses it (jupyter-book adds it to every page).
- A launch button is kept only where a learner notebook exists beside the chapter.
- The kernels the build starts see ``DEEPRES_BOOK_HTML=1``, so the figures write HTML.

And a few repairs for readers who use assistive technology (WCAG 2.1 AA, checked by axe-core
in tests/test_browser.py):
- the theme's search field is a button whose label ("Search") leaves out what it shows
  ("Search Ctrl+K"): its name is taken from what it shows instead; the colour-mode
  button's icons carry titles its label leaves out: they become decorative;
- jupyterquiz's box for a typed answer gets its label ("Type numeric answer here:"),
  which it draws but does not tie to the box;
- the figures' captions keep their contrast in dark mode;
- a folded cell's toggle ("Running this chapter") is named by what it shows, not by
  myst-nb's "Toggle hidden content".
"""
import os
import re
import shutil
from pathlib import Path

from sphinx.errors import ExtensionError

VENDOR = Path(__file__).resolve().parent.parent / "vendor" / "node_modules"
MATHJAX = "lib/mathjax/tex-chtml.js"
PLOTLY = "lib/plotly-basic.min.js"
# what is copied: (source under node_modules, target under _static/lib)
ASSETS = [("mathjax/es5/tex-chtml.js", "mathjax/tex-chtml.js"),
          ("mathjax/es5/output/chtml/fonts/woff-v2", "mathjax/output/chtml/fonts/woff-v2"),
          ("mathjax/es5/input/tex/extensions", "mathjax/input/tex/extensions"),
          ("mathjax/es5/a11y", "mathjax/a11y"),
          ("mathjax/es5/ui", "mathjax/ui"),
          ("plotly.js-basic-dist-min/plotly-basic.min.js", "plotly-basic.min.js")]
# A widget's view in a cell's output (the progress bars of training runs are ipywidgets
# in a kernel): without the widget manager it shows nothing, so it is left out.
# jupyterquiz's script for a numeric question: the label it draws, tied to the input box
QUIZ_INPUT = ('inp.id = id + "-0";', 'inp.id = id + "-0"; lab.htmlFor = inp.id;')
# the theme's search field: a button that shows "Search Ctrl+K", labelled "Search"
SEARCH_LABEL = re.compile(r'(<button class="[^"]*search-button-field[^"]*"[^>]*?) aria-label="Search"')
# the theme's colour-mode button, labelled "Color mode", shows an icon titled "Light",
# "Dark" or "System Settings": the icons become decorative, the label names the button
MODE_ICON = re.compile(r'(<i class="theme-switch [^"]*" data-mode="\w+")\s+title="[^"]*"></i>')
# myst-nb labels a folded cell's toggle "Toggle hidden content", while it shows the cell's
# prompt ("Running this chapter"): without the label, what it shows is its name
FOLDED_LABEL = ('<summary aria-label="Toggle hidden content">', '<summary>')
WIDGET_VIEW = re.compile(
    r'<script type="application/vnd\.jupyter\.widget-view\+json">.*?</script>', re.S)
CSS = """
figure.deepres-figure { margin: 1em 0; }
.deepres-control { margin-bottom: .4em; }
.deepres-control label { margin-right: .6em; font-weight: 600; }
.deepres-control input[type=range] { vertical-align: middle; width: 16em; }
figure.deepres-figure figcaption { font-size: .9em; color: var(--pst-color-text-muted); }
html[data-theme="dark"] figure.deepres-figure figcaption { color: var(--pst-color-text-base); }
/* A click anywhere on a solution's title opens it: sphinx-togglebutton only handles a
   click on the title itself, and throws on a click that lands on the link inside it. */
.dropdown > .admonition-title > *:not(.toggle-button) { pointer-events: none; }
"""


def check_assets():
    missing = [src for src, _ in ASSETS if not (VENDOR / src).exists()]
    if missing:
        raise ExtensionError(
            f"the book's JavaScript is missing from {VENDOR} ({', '.join(missing)}). "
            "Run `make setup` (it runs `npm ci --prefix vendor`).")


def configure(app, config):
    check_assets()
    config.mathjax_path = MATHJAX
    config.nb_ipywidgets_js = {}
    # pydata-sphinx-theme logs an error on every page when no mode is set (a template
    # variable, not a theme option)
    config.html_context = {**config.html_context, "default_mode": "auto"}
    os.environ["DEEPRES_BOOK_HTML"] = "1"


def page(app, pagename, templatename, context, doctree):
    """Per page: no Thebe, plotly.js where a figure needs it, launch buttons only where
    a learner notebook exists."""
    scripts = context.get("script_files", [])
    for asset in list(scripts):
        name = str(getattr(asset, "filename", asset) or "")
        attributes = getattr(asset, "attributes", {})
        if ("thebe" in name.lower() or "THEBE" in attributes.get("body", "")
                # the saved state of the notebook's widgets: nothing on the page reads it
                or "jupyter.widget-state" in attributes.get("type", "")):
            scripts.remove(asset)
    styles = context.get("css_files", [])
    for asset in list(styles):
        if "thebe" in str(getattr(asset, "filename", asset) or "").lower():
            styles.remove(asset)
    if "body" in context:
        context["body"] = (WIDGET_VIEW.sub("", context["body"]).replace(*QUIZ_INPUT)
                           .replace(*FOLDED_LABEL))
    if "deepres-figure" in context.get("body", ""):
        app.builder.add_js_file(PLOTLY, defer="defer")
    source = Path(app.env.doc2path(pagename))
    if not source.with_suffix(".ipynb").exists():
        buttons = context.get("header_buttons", [])
        buttons[:] = [b for b in buttons if b.get("label") != "launch-buttons"]


def copy_assets(app, exception):
    if exception or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / "lib"
    for src, dst in ASSETS:
        src, dst = VENDOR / src, target / dst
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dst)
    (target / "deepres.css").write_text(CSS)
    for page in Path(app.outdir).rglob("*.html"):
        text = page.read_text()
        fixed = MODE_ICON.sub(r'\1 aria-hidden="true"></i>', SEARCH_LABEL.sub(r"\1", text))
        if fixed != text:
            page.write_text(fixed)


def setup(app):
    app.connect("config-inited", configure)
    app.connect("html-page-context", page, priority=900)
    app.connect("build-finished", copy_assets)
    app.add_css_file("lib/deepres.css")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
