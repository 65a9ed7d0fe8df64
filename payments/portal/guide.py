"""The notification contract as merchants read it in the portal: docs/notifications.md itself,
rendered, so the contract is written once."""

from pathlib import Path

from markdown_it import MarkdownIt

CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "notifications.md"


def contract_html() -> str:
    """docs/notifications.md as HTML, without its title (the page has its own).

    Raw HTML in the file is escaped (markdown-it's "js-default" preset: CommonMark and
    tables, no HTML). Links to the repository's own files are shown as their text: a
    merchant has the contract, not our source tree.
    """
    markdown = MarkdownIt("js-default")
    tokens = markdown.parse(CONTRACT.read_text(encoding="utf-8"))
    if tokens and tokens[0].type == "heading_open" and tokens[0].tag == "h1":
        tokens = tokens[3:]  # heading_open, its inline text, heading_close
    for token in tokens:
        if token.children:
            token.children = _without_relative_links(token.children)
    return markdown.renderer.render(tokens, markdown.options, {})


def _without_relative_links(children: list) -> list:
    kept, dropping = [], 0
    for child in children:
        if child.type == "link_open" and not str(child.attrGet("href")).startswith("http"):
            dropping += 1
        elif child.type == "link_close" and dropping:
            dropping -= 1
        else:
            kept.append(child)
    return kept
