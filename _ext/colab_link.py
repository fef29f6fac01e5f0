"""The ``colab-link`` directive: a link that opens this chapter's learner notebook in Colab.

The URL comes from ``devtools/repository.py``: ``_config.yml``'s repository, or the one the build
is told to use (a fork's, in its own GitHub Actions build). The same URL goes to the
theme's launch and repository buttons. The learner notebook is the ``.ipynb`` beside the
chapter's ``.md`` (made by ``devtools/learner.py``).
"""
from docutils import nodes
from sphinx.util.docutils import SphinxDirective

from devtools.repository import colab_url, point_at_the_builds_repository


class ColabLink(SphinxDirective):
    def run(self):
        options = self.config.html_theme_options
        book = options.get("path_to_docs", "").strip("/")
        path = f"{book}/{self.env.docname}.ipynb" if book else f"{self.env.docname}.ipynb"
        try:
            url = colab_url(options.get("repository_url", ""),
                            options.get("repository_branch", "main"), path)
        except ValueError as error:
            raise self.error(str(error))
        link = nodes.reference("", "Open this chapter in Colab", refuri=url)
        text = nodes.Text(" - the learner's version, with the exercises left for you to "
                          "fill in; it runs on Colab's free GPU or on its CPU.")
        return [nodes.paragraph("", "", nodes.strong("", "", link), text)]


def use_the_builds_repository(app, config):
    point_at_the_builds_repository(config.html_theme_options)


def setup(app):
    app.add_directive("colab-link", ColabLink)
    app.connect("config-inited", use_the_builds_repository)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
