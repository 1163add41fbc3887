"""The Markdown files of the repository: every relative link resolves to a file inside it (and an #anchor to one of
its headings), none points outside it (`../` out of the repository, or the `shared/` folder of the people who wrote
it), and no document speaks of how it was made instead of what it is."""
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SKIP = {".venv", ".git", "runs", "data", ".carry", ".pytest_cache", "node_modules"}
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def markdown_files() -> list[Path]:
    return sorted(p for p in REPO.rglob("*.md") if not SKIP & set(p.relative_to(REPO).parts))


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped (but - and _), spaces as hyphens."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {slug(m) for m in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, flags=re.M)}


def links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)  # code spans are not links
    return LINK.findall(text)


def test_there_are_markdown_files_to_check():
    names = {p.relative_to(REPO).as_posix() for p in markdown_files()}
    assert {"README.md", "docs/RELIABILITY.md", "docs/DEVELOPING.md", "report/README.md"} <= names


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_stays_in_the_repository_and_resolves(path):
    bad = []
    for target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, file: ...
            continue
        file, _, anchor = target.partition("#")
        resolved = (path.parent / file).resolve() if file else path
        if REPO not in resolved.parents and resolved != REPO:
            bad.append(f"{target}: leaves the repository")
        elif "shared" in Path(file).parts:
            bad.append(f"{target}: points into shared/")
        elif not resolved.exists():
            bad.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            bad.append(f"{target}: no heading #{anchor} there")
    assert not bad, f"{path.relative_to(REPO)}: " + "; ".join(bad)


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_documents_speak_of_the_project_not_of_how_it_was_made(path):
    text = path.read_text()
    for phrase in ("shared/seeds", "../shared", "was lent", "were lent", "the issue measured", "(seed 00"):
        assert phrase not in text, f"{path.relative_to(REPO)} says {phrase!r}"
