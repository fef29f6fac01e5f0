"""The ``colab-link`` directive: a link that opens this chapter's learner notebook in Colab.

The URL is built from ``repository.url`` and ``repository.branch`` in ``_config.yml``,
so the repository's address is written in one place. The learner notebook is the
``.ipynb`` beside the chapter's ``.md`` (made by ``tools/learner.py``).
"""
from docutils import nodes
from sphinx.util.docutils import SphinxDirective

COLAB = "https://colab.research.google.com/github"


def colab_url(repository_url, branch, path):
    prefix = "https://github.com/"
    if not repository_url.startswith(prefix):
        raise ValueError(f"repository.url must be a GitHub URL, got {repository_url!r}")
    return f"{COLAB}/{repository_url[len(prefix):].rstrip('/')}/blob/{branch}/{path}"


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


def setup(app):
    app.add_directive("colab-link", ColabLink)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
