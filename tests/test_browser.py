"""The published book as a reader meets it: every page of a fresh build, opened in headless
Chromium (Debian's package, driven by Playwright) with every request that leaves this
machine blocked, as a reader offline would.

One visit per page collects what the tests below check: console errors, failed and
external requests, math that MathJax did not render, images, solution toggles, quizzes,
interactive figures, Colab links, heading levels. It also saves a screenshot of the page
(``_build/browser/``) and its transfer size and load time (``_build/reports/pages.md``,
printed at the end of the test session).
"""
import functools
import gzip
import http.server
import json
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "_build" / "browser"
REPORT = ROOT / "_build" / "reports" / "pages.md"
AXE_REPORT = ROOT / "_build" / "reports" / "axe.json"
AXE = ROOT / "vendor" / "node_modules" / "axe-core" / "axe.min.js"   # pinned in vendor/
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]   # WCAG 2.0 and 2.1, levels A and AA
MB = 1 << 20
MAX_BYTES = 5 * MB
HEAVY_PAGES = {}   # page -> why it may weigh more than MAX_BYTES (none does)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
TEX = re.compile(r"\\\(|\\\[|\$\$|\\frac|\\mathcal|\\partial|\\left|\\cdot|\\sum|\\sqrt")
# a word from each chapter that the search must find on that chapter's page
SEARCH_WORDS = {"intro": "reproduce", "01_vgg": "receptive", "02_degradation": "degradation",
                "03_residual": "shortcut", "04_bottleneck": "bottleneck",
                "05_resnext": "cardinality", "06_densenet": "concatenate",
                "07_why": "lesion", "08_practice": "backbones",
                "running": "checkpoint", "performance": "throughput"}


def chromium():
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("Chromium is not installed: `apt-get install chromium` (make test does "
                    "it when it runs as root)")
    return path


@pytest.fixture(scope="module")
def site(book):
    code, log, html = book
    assert code == 0, f"the book did not build:\n{log[-3000:]}"
    handler = functools.partial(_QuietHandler, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield html, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        yield b
        b.close()


def pages_of(html):
    return sorted(str(p.relative_to(html)) for p in html.rglob("*.html")
                  if p.name not in ("genindex.html", "search.html")
                  and not p.relative_to(html).parts[0].startswith("_"))


@pytest.fixture(scope="module")
def visits(site, browser):
    """Open every page once; return {page: what the visit saw}."""
    html, base = site
    SHOTS.mkdir(parents=True, exist_ok=True)
    seen = {name: visit(browser, html, base, name) for name in pages_of(html)}
    write_report(seen)
    AXE_REPORT.write_text(json.dumps({name: r["axe"] for name, r in seen.items()}, indent=1))
    return seen


def visit(browser, html, base, name):
    record = {"external": [], "failed": [], "console": [], "bytes": 0, "transfer": 0,
              "requests": 0}
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()

    def route(r):
        if urlparse(r.request.url).hostname in ("127.0.0.1", None) \
                or r.request.url.startswith("data:"):
            r.continue_()
        else:
            record["external"].append(r.request.url)
            r.abort()

    def finished(request):
        path = urlparse(request.url).path.lstrip("/")
        target = html / (path or "index.html")
        if target.is_dir():
            target = target / "index.html"
        record["requests"] += 1
        if target.exists():
            record["bytes"] += target.stat().st_size
            record["transfer"] += transfer_size(target)

    page.route("**/*", route)
    page.on("requestfinished", finished)
    page.on("requestfailed", lambda r: r.url in record["external"]
            or record["failed"].append(f"{r.url}: {r.failure}"))
    page.on("response", lambda r: r.status >= 400
            and record["failed"].append(f"{r.url}: HTTP {r.status}"))
    page.on("console", lambda m: m.type == "error" and record["console"].append(m.text))
    page.on("pageerror", lambda e: record["console"].append(f"uncaught: {e}"))

    start = time.perf_counter()
    page.goto(base + name, wait_until="load")
    page.wait_for_load_state("networkidle")
    page.evaluate("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
    record["seconds"] = time.perf_counter() - start
    record["load_ms"] = page.evaluate(
        "() => performance.getEntriesByType('navigation')[0].loadEventEnd")
    record["url"] = page.url
    page.wait_for_timeout(700)   # the quizzes typeset their math after 500 ms
    page.screenshot(path=str(SHOTS / (name.replace("/", "_") + ".png")))

    record["math"] = page.evaluate("""() => {
        const all = [...document.querySelectorAll('.math')];
        return {total: all.length,
                unrendered: all.filter(e => !e.querySelector('mjx-container'))
                               .map(e => e.textContent.slice(0, 80)),
                errors: document.querySelectorAll('mjx-merror').length};
    }""")
    record["raw_tex"] = page.evaluate("""(pattern) => {
        const re = new RegExp(pattern);
        const main = document.querySelector('main') || document.body;
        const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
        const found = [];
        while (walker.nextNode()) {
            const n = walker.currentNode;
            if (n.parentElement.closest('pre, code, script, style, mjx-container, .highlight'))
                continue;
            if (re.test(n.textContent)) found.push(n.textContent.trim().slice(0, 80));
        }
        return found;
    }""", TEX.pattern)
    record["images"] = page.evaluate("""() => [...document.querySelectorAll('main img')].map(
        i => ({src: i.getAttribute('src'), alt: i.getAttribute('alt') || '',
               loaded: i.complete && i.naturalWidth > 0,
               caption: !!(i.closest('figure') && i.closest('figure').querySelector('figcaption'))}))""")
    record["headings"] = page.evaluate("""() => [...document.querySelectorAll(
        'main article h1, main article h2, main article h3, main article h4, main article h5, main article h6')]
        .map(h => [Number(h.tagName[1]), h.textContent.trim().slice(0, 60)])""")
    record["widget_scripts"] = page.evaluate(
        "() => document.querySelectorAll('script[type*=\"jupyter.widget\"]').length")
    record["assets"] = page.evaluate("""() => [
        ...[...document.querySelectorAll('script[src]')].map(s => s.getAttribute('src')),
        ...[...document.querySelectorAll('link[rel=stylesheet]')].map(l => l.getAttribute('href'))]""")
    record["colab"] = page.evaluate("""() => [...document.querySelectorAll('a[href*="colab.research.google.com"]')]
        .map(a => a.href)""")
    record["axe"] = {mode: check_accessibility(page, mode) for mode in ("light", "dark")}
    record["solutions"] = check_solutions(page)
    record["quizzes"] = check_quizzes(page)
    record["figures"] = check_figures(page)
    record["keyboard"] = check_keyboard(page)
    context.close()
    return record


def check_accessibility(page, mode):
    """axe-core's WCAG 2.1 A and AA rules on the page in the theme's ``mode``: every
    violation, with its impact and the elements it found."""
    if not AXE.is_file():
        pytest.fail(f"axe-core is missing ({AXE}): run `make setup`")
    # the theme fades colours in when the mode changes: measure the colours it ends with
    page.add_style_tag(content="*, *::before, *::after { transition: none !important; }")
    page.evaluate("""mode => { document.documentElement.dataset.theme = mode;
                               document.documentElement.dataset.mode = mode; }""", mode)
    page.wait_for_timeout(300)
    if not page.evaluate("() => !!window.axe"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate("""tags => axe.run(document, {runOnly: {type: 'tag', values: tags},
                                                         resultTypes: ['violations']})""", WCAG)
    return [{"rule": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [" ".join(n["target"]) if isinstance(n["target"], list) else n["target"]
                       for n in v["nodes"]][:10]}
            for v in result["violations"]]


def check_keyboard(page):
    """From the keyboard alone: each interactive figure's control takes the focus and an
    arrow key changes what is drawn; each quiz question answers a key (Space on a choice,
    Enter after a typed number)."""
    page.reload(wait_until="load")   # nothing clicked or moved yet
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(700)   # the quizzes are drawn after 500 ms
    figures = []
    for figure in page.query_selector_all("figure.deepres-figure"):
        control, plot = figure_parts(page, figure)
        drawn = drawing(plot)
        control.focus()
        focused = control.evaluate("c => document.activeElement === c")
        page.keyboard.press("ArrowDown" if control.evaluate("c => c.tagName") == "SELECT"
                            else "ArrowRight")
        page.wait_for_timeout(300)
        figures.append({"focused": focused, "changes": drawing(plot) != drawn})
    quizzes = []
    for quiz in page.query_selector_all(".Quiz"):
        choice = quiz.query_selector(".MCButton input")
        number = quiz.query_selector("input.Input-text")
        target = choice or number
        if target is None:
            quizzes.append({"kind": "none", "answered": False})
            continue
        target.focus()
        focused = target.evaluate("t => document.activeElement === t")
        if choice:
            page.keyboard.press("Space")
        else:
            page.keyboard.type("1")
            page.keyboard.press("Enter")
        page.wait_for_timeout(200)
        feedback = quiz.query_selector(".Feedback")
        quizzes.append({"kind": "choice" if choice else "number",
                        "focused": focused,
                        "answered": bool(feedback and feedback.inner_text().strip())})
    return {"figures": figures, "quizzes": quizzes}


@functools.lru_cache(maxsize=None)
def transfer_size(path):
    """Bytes sent for a file by a server that compresses text, as GitHub Pages does (gzip
    for HTML, CSS, JavaScript, JSON and SVG; images and fonts as they are)."""
    data = path.read_bytes()
    if path.suffix in (".html", ".css", ".js", ".json", ".svg", ".txt"):
        return len(gzip.compress(data, 6))
    return len(data)


def check_solutions(page):
    """For each solution dropdown: hidden at first, shown after a click on its title."""
    results = []
    for solution in page.query_selector_all(".solution.dropdown"):
        body = solution.query_selector(":scope > :not(.admonition-title)")
        before = body.is_visible() if body else None
        solution.query_selector(".admonition-title").click()
        page.wait_for_timeout(100)
        after = body.is_visible() if body else None
        results.append({"id": solution.get_attribute("id"), "hidden": before is False,
                        "opens": after is True})
    return results


def check_quizzes(page):
    """For each quiz question (jupyterquiz draws one ``.Quiz`` box per question): a click
    on an answer, or a number typed and entered, gives feedback."""
    results = []
    for quiz in page.query_selector_all(".Quiz"):
        answers = quiz.query_selector_all(".MCButton")
        number = quiz.query_selector("input")
        feedback = quiz.query_selector(".Feedback")
        if answers:
            answers[0].click()
        elif number:
            number.fill("1")
            number.press("Enter")
        page.wait_for_timeout(200)
        answered = bool(feedback and feedback.inner_text().strip())
        results.append({"kind": "choice" if answers else "number" if number else "none",
                        "answered": answered})
    return results


def figure_parts(page, figure):
    """An interactive figure's control and plot, once plotly has drawn it."""
    control = figure.query_selector("select, input[type=range]")
    plot = figure.query_selector(".deepres-plot")
    page.wait_for_function("p => p.querySelector('.main-svg')", arg=plot)
    return control, plot


def drawing(plot):
    """What plotly has drawn, to tell whether moving the control changed it."""
    return plot.evaluate("p => p.querySelector('.main-svg').parentElement.innerHTML")


def check_figures(page):
    """For each interactive figure: moving its control changes what is drawn."""
    results = []
    for figure in page.query_selector_all("figure.deepres-figure"):
        control, plot = figure_parts(page, figure)
        drawn = drawing(plot)
        options = control.evaluate(
            "c => c.tagName === 'SELECT' ? c.options.length : Number(c.max) + 1")
        if control.evaluate("c => c.tagName") == "SELECT":
            control.select_option(index=options - 1)
        else:
            control.focus()
            control.press("End")
        page.wait_for_timeout(300)
        after = drawing(plot)
        results.append({"label": figure.query_selector("label").inner_text(),
                        "states": options, "changes": after != drawn,
                        "alt": figure.query_selector("[role=group]").get_attribute(
                            "aria-label") or ""})
    return results


def write_report(seen):
    lines = ["| page | requests (all local) | external | files (MB) | transfer, gzip (MB) "
             "| load (ms) | interactive figures |", "|---|---|---|---|---|---|---|"]
    for name, r in seen.items():
        figures = "; ".join(f"{f['label']} ({f['states']} states)" for f in r["figures"]) or "-"
        lines.append(f"| {name} | {r['requests']} | {len(r['external'])} | "
                     f"{r['bytes'] / MB:.2f} | {r['transfer'] / MB:.2f} | {r['load_ms']:.0f} "
                     f"| {figures} |")
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text("\n".join(lines) + "\n")


def _pages():
    """The pages the book has (from _toc.yml), before the build exists."""
    import yaml
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    return ["index.html"] + [f + ".html" for f in files]


PAGES = _pages()


def test_every_page_is_visited(visits):
    assert sorted(visits) == sorted(PAGES)


@pytest.mark.parametrize("name", PAGES)
def test_page_requests_nothing_from_outside_and_logs_no_error(visits, name):
    r = visits[name]
    assert r["external"] == [], f"{name} asked the network for {r['external']}"
    assert r["failed"] == [], f"{name} had failed requests: {r['failed']}"
    assert r["console"] == [], f"{name} logged errors: {r['console']}"


@pytest.mark.parametrize("name", PAGES)
def test_page_loads_no_thebe_and_no_widget_manager(visits, name):
    unused = [a for a in visits[name]["assets"]
              if re.search(r"thebe|require|html-manager|embed-amd", a, re.I)]
    assert unused == [], f"{name} loads what no page uses: {unused}"
    assert visits[name]["widget_scripts"] == 0, f"{name} carries widget state or views"


@pytest.mark.parametrize("name", PAGES)
def test_math_is_rendered(visits, name):
    r = visits[name]
    assert r["math"]["unrendered"] == [], f"MathJax did not render: {r['math']['unrendered']}"
    assert r["math"]["errors"] == 0
    assert r["raw_tex"] == [], f"raw TeX on {name}: {r['raw_tex']}"


@pytest.mark.parametrize("name", PAGES)
def test_images_load_and_have_alt_text_or_a_caption(visits, name):
    for image in visits[name]["images"]:
        assert image["loaded"], f"{image['src']} did not load"
        alt = image["alt"].strip()
        meaningful = alt and not re.search(r"\.(png|jpe?g|svg|gif)$|^\.\./|_images/", alt)
        assert meaningful or image["caption"], \
            f"{image['src']} on {name} has no alt text ({alt!r}) and no caption"


@pytest.mark.parametrize("name", PAGES)
def test_headings_do_not_skip_a_level(visits, name):
    levels = [level for level, _ in visits[name]["headings"]]
    if not levels:
        return
    assert levels[0] == 1, visits[name]["headings"][:3]
    for (a, text_a), (b, text_b) in zip(visits[name]["headings"], visits[name]["headings"][1:]):
        assert b <= a + 1, f"{text_a!r} (h{a}) is followed by {text_b!r} (h{b})"


@pytest.mark.parametrize("name", PAGES)
def test_page_weight(visits, name):
    """What a reader downloads, compressed as GitHub Pages serves it (the uncompressed
    files are in the report too)."""
    r = visits[name]
    if name not in HEAVY_PAGES:
        assert r["transfer"] <= MAX_BYTES, f"{name} transfers {r['transfer'] / MB:.1f} MB"


CHAPTERS = [p for p in PAGES if re.match(r"chapters/\d\d_", p)]


@pytest.mark.parametrize("name", CHAPTERS)
def test_solution_toggles_open(visits, name):
    solutions = visits[name]["solutions"]
    assert solutions, f"{name} has no solution dropdowns"
    for s in solutions:
        assert s["hidden"] and s["opens"], s


@pytest.mark.parametrize("name", CHAPTERS)
def test_quiz_renders_and_answers_a_click(visits, name):
    quizzes = visits[name]["quizzes"]
    assert quizzes, f"{name} has no quiz"
    assert len(quizzes) >= 5, f"{name} has {len(quizzes)} quiz questions"
    for q in quizzes:
        assert q["kind"] != "none" and q["answered"], q


@pytest.mark.parametrize("name", CHAPTERS)
def test_interactive_figure_changes_when_its_control_moves(visits, name):
    figures = visits[name]["figures"]
    assert figures, f"{name} has no interactive figure"
    for f in figures:
        assert f["states"] >= 2 and f["changes"], f
        assert f["alt"], f"a figure on {name} has no alt text"


SERIOUS = ("serious", "critical")


@pytest.mark.parametrize("name", PAGES)
@pytest.mark.parametrize("mode", ["light", "dark"])
def test_no_serious_accessibility_violation(visits, name, mode):
    """WCAG 2.1 A and AA, as axe-core checks them; the full list, minor ones included, is
    in _build/reports/axe.json."""
    serious = [v for v in visits[name]["axe"][mode] if v["impact"] in SERIOUS]
    assert serious == [], f"{name}, {mode} mode: {json.dumps(serious, indent=1)}"


@pytest.mark.parametrize("name", CHAPTERS)
def test_figures_and_quizzes_work_from_the_keyboard(visits, name):
    keyboard = visits[name]["keyboard"]
    assert keyboard["figures"] and keyboard["quizzes"]
    for f in keyboard["figures"]:
        assert f["focused"] and f["changes"], f
    for q in keyboard["quizzes"]:
        assert q["kind"] != "none" and q["focused"] and q["answered"], q


def _repository_files():
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    return set(out.stdout.split()) if out.returncode == 0 else {
        str(p.relative_to(ROOT)) for p in ROOT.rglob("*.ipynb")}


@pytest.mark.parametrize("name", PAGES)
def test_colab_links_open_a_learner_notebook_of_the_repository(visits, name):
    files = _repository_files()
    for url in visits[name]["colab"]:
        match = re.search(r"/github/[^/]+/[^/]+/blob/[^/]+/(.+)$", url)
        assert match, f"not a Colab link to a GitHub file: {url}"
        path = match.group(1)
        assert path.endswith(".ipynb") and path in files, f"{url}: {path} is not in the repository"
        meta = json.loads((ROOT / path).read_text())["metadata"]
        assert "deepres" in meta, f"{path} is not a learner notebook"


@pytest.mark.parametrize("chapter, word", sorted(SEARCH_WORDS.items()))
def test_search_finds_a_word_of_every_chapter(site, browser, chapter, word):
    html, base = site
    page = browser.new_page()
    page.route("**/*", lambda r: r.continue_() if "127.0.0.1" in r.request.url else r.abort())
    page.goto(f"{base}search.html?q={word}")
    page.wait_for_selector("#search-results ul li", timeout=30_000)
    page.wait_for_timeout(500)
    links = page.eval_on_selector_all("#search-results ul li a", "as => as.map(a => a.href)")
    page.close()
    assert any(f"chapters/{chapter}.html" in link for link in links), \
        f"searching {word!r} does not find chapters/{chapter}.html: {links[:10]}"
