"""mkdocs hook: pages assembled from README.md sections and repository files, so the site and the README say
each thing once.

In a page under docs/, a line
- `<!-- readme: ## Quickstart -->` is replaced by the README section "Quickstart", its heading at level 2 (its
  subsections follow); `<!-- readme: # Errors -->` makes it the page title;
- `<!-- readme: intro -->` by the README's text before its first section, without the `# title` line;
- `<!-- file: benchmarks/README.md -->` by that file of the repository;
- `<!-- code: examples/fastapi_app.py -->` by that file of the repository as a code block (its language named by
  its extension), shown as it is.
Links in the included text to repository files that are pages of the site (`REPO_PAGES`), to files under docs/
(pictures), and to README headings are pointed at those pages and files; anything else a link names must exist, or
`mkdocs build --strict` fails.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parents[2]
DIRECTIVE = re.compile(r"^<!-- (?P<kind>readme|file|code): (?P<what>.+?) -->$", re.MULTILINE)
HEADING = re.compile(r"^(?P<level>#{1,6}) (?P<title>.+)$")
LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")

# Repository files shown as pages of the site: a link to one in included text goes to its page.
REPO_PAGES = {
    "README.md": "index.md",
    "benchmarks/README.md": "guides/benchmarks.md",
    "CHANGELOG.md": "changelog.md",
    "examples/fastapi_app.py": "examples/fastapi_app.md",
}
CODE_LANGUAGES = {".py": "python", ".sh": "sh", ".toml": "toml", ".yml": "yaml"}


def _outside_code(lines: list[str]) -> list[bool]:
    """For each line, True when it is Markdown text rather than the inside (or fence) of a code block."""
    flags, fence = [], ""
    for line in lines:
        stripped = line.lstrip()
        if fence:
            flags.append(False)
            if stripped.startswith(fence):
                fence = ""
        elif stripped.startswith(("```", "~~~")):
            fence = stripped[:3]
            flags.append(False)
        else:
            flags.append(True)
    return flags


def _anchor(title: str) -> str:
    """The id mkdocs' toc extension gives a heading (its default slugify)."""
    text = re.sub(r"[`*_\[\]()]", "", title).strip().lower()
    return re.sub(r"[\s-]+", "-", re.sub(r"[^\w\s-]", "", text))


def readme_sections() -> tuple[str, dict[str, list[str]]]:
    """The README's intro, and its `## ` sections by title (each one's lines, its heading first)."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    intro: list[str] = []
    sections: dict[str, list[str]] = {}
    current = intro
    for line, text in zip(lines, _outside_code(lines), strict=True):
        match = HEADING.match(line) if text else None
        if match and len(match["level"]) == 2:
            current = sections.setdefault(match["title"].strip(), [])
        if match and len(match["level"]) == 1 and current is intro:
            continue  # the README's own title: the page has its own
        current.append(line)
    return "\n".join(intro).strip() + "\n", sections


def _shifted(lines: list[str], level: int) -> list[str]:
    shift = level - 2
    out = []
    for line, text in zip(lines, _outside_code(lines), strict=True):
        match = HEADING.match(line) if text else None
        if match:
            line = "#" * max(1, len(match["level"]) + shift) + " " + match["title"]
        out.append(line)
    return out


def _section_pages(config: Any) -> dict[str, str]:
    """README section title -> the page (src path) that includes it, from every page's directives."""
    pages: dict[str, str] = {}
    docs = Path(config["docs_dir"])
    for path in sorted(docs.rglob("*.md")):
        for match in DIRECTIVE.finditer(path.read_text(encoding="utf-8")):
            if match["kind"] == "readme" and match["what"] != "intro":
                pages[match["what"].lstrip("# ").strip()] = path.relative_to(docs).as_posix()
    return pages


def _relink(text: str, source: str, page: str, config: Any) -> str:
    """Point the links of text included from `source` (a repository path) at the site's pages."""
    _, sections = readme_sections()
    anchors = {
        _anchor(HEADING.match(line)["title"]): title  # type: ignore[index]
        for title, lines in sections.items()
        for line, text in zip(lines, _outside_code(lines), strict=True)
        if text and HEADING.match(line)
    }
    owners = _section_pages(config)
    here = posixpath.dirname(page)

    def target_of(match: re.Match[str]) -> str:
        target = match["target"]
        if "://" in target or target.startswith("mailto:"):
            return match[0]
        path, _, fragment = target.partition("#")
        if not path and source == "README.md" and fragment in anchors:
            path = owners.get(anchors[fragment], page)
        elif path:
            repo_path = posixpath.normpath(posixpath.join(posixpath.dirname(source), path))
            if repo_path.startswith("docs/") and (ROOT / repo_path).is_file():
                path = repo_path.removeprefix("docs/")  # a picture of the site (docs/images/...)
            elif repo_path not in REPO_PAGES:
                raise PluginError(f"{source} links to {target!r}, which is not a page of the site (REPO_PAGES)")
            else:
                path = REPO_PAGES[repo_path]
        else:
            return match[0]
        relative = posixpath.relpath(path, here) if path != page else ""
        return f"]({relative}{'#' + fragment if fragment else ''})"

    return LINK.sub(target_of, text)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace each directive line of a page with the text it names."""
    intro, sections = readme_sections()

    def included(match: re.Match[str]) -> str:
        what = match["what"].strip()
        if match["kind"] in ("file", "code"):
            path = ROOT / what
            if not path.is_file():
                raise PluginError(f"{page.file.src_uri}: no file {what!r} in the repository")
            text = path.read_text(encoding="utf-8")
            if match["kind"] == "code":
                fence = "````" if "```" in text else "```"
                return f"{fence}{CODE_LANGUAGES.get(path.suffix, '')}\n{text.rstrip()}\n{fence}"
            return _relink(text, what, page.file.src_uri, config)
        if what == "intro":
            return _relink(intro, "README.md", page.file.src_uri, config)
        heading = HEADING.match(what)
        if heading is None or heading["title"] not in sections:
            raise PluginError(f"{page.file.src_uri}: README.md has no section {what!r}")
        text = "\n".join(_shifted(sections[heading["title"]], len(heading["level"])))
        return _relink(text, "README.md", page.file.src_uri, config)

    return DIRECTIVE.sub(included, markdown)
