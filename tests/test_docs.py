"""The README and ``docs/`` point at what exists: every relative link and picture
resolves (a ``#section`` to one of the target's headings) and every repository path
named in backticks is a file of the checkout."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
PATH = re.compile(r"`([A-Za-z0-9_./-]+/[A-Za-z0-9_.-]+\.(?:py|yaml|keras|md|png|jsonl?|sh|toml))"
                  r"(?::[^`]*)?`")
NOT_IN_REPO = ("runs/", "OUT/", "../", "/")      # made by a run, or outside the checkout


def prose(page):
    """The page without its fenced code blocks (commands there name files to be made)."""
    return re.sub(r"^```.*?^```", "", page.read_text(), flags=re.S | re.M)


def anchors(page):
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.+)$", prose(page), flags=re.M)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_and_pictures_resolve(page):
    broken = []
    for target in LINK.findall(prose(page)):
        if target.startswith(("http://", "https://")) or "*" in target:
            continue
        file, _, anchor = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        if not dest.is_file() or (anchor and anchor not in anchors(dest)):
            broken.append(target)
    assert not broken, f"{page.name}: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_named_repository_files_exist(page):
    named = {p for p in PATH.findall(prose(page)) if not p.startswith(NOT_IN_REPO)}
    assert not [p for p in sorted(named) if not (ROOT / p).is_file()], page.name


def test_the_checks_fail_on_a_stale_page(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Top\n[gone](missing.md) [here](#top) [there](#nowhere)\n"
                    "see `cinn/apps/none/gone.py`\n")
    assert [t for t in LINK.findall(prose(page))] == ["missing.md", "#top", "#nowhere"]
    assert anchors(page) == {"top"}
    assert PATH.findall(prose(page)) == ["cinn/apps/none/gone.py"]
