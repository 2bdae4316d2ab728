"""The README and ``docs/`` point at what exists: every relative link and picture
resolves (a ``#section`` to one of the target's headings) and every repository path
named in backticks is a file of the checkout. Nothing of the long README that became
the documentation site was lost: every line of its fenced code blocks, every table row
and every figure of its prose (``tests/data/readme_*.txt``, extracted once from commit
f62d169 by ``tests/data/extract_readme.py``) is still in README.md or ``docs/``."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
DATA = ROOT / "tests" / "data"
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


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_and_pictures_resolve(page):
    broken = []
    for target in LINK.findall(prose(page)):
        if target.startswith(("http://", "https://")) or "*" in target:
            continue
        file, _, anchor = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        if not dest.is_file() or (anchor and anchor not in anchors(dest)):
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)}: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_named_repository_files_exist(page):
    named = {p for p in PATH.findall(prose(page)) if not p.startswith(NOT_IN_REPO)}
    assert not [p for p in sorted(named) if not (ROOT / p).is_file()], page.relative_to(ROOT)


def test_the_checks_fail_on_a_stale_page(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Top\n[gone](missing.md) [here](#top) [there](#nowhere)\n"
                    "see `cinn/apps/none/gone.py`\n")
    assert [t for t in LINK.findall(prose(page))] == ["missing.md", "#top", "#nowhere"]
    assert anchors(page) == {"top"}
    assert PATH.findall(prose(page)) == ["cinn/apps/none/gone.py"]


# --- the long README's commands, tables and figures, kept in README.md + docs/ ----------

#: lines changed on purpose when the README moved into docs/: old line -> its successor
#: (the backends became extras; the apps moved into the cinn namespace)
REPLACED = {
    "pip install -e . && cinn colorize skimage:astronaut -n 8 -o out/ # demo: 8 colourings -> "
    "out/astronaut_colorized.png":
        "pip install -e '.[tensorflow]' && cinn colorize skimage:astronaut -n 8 -o out/ # demo: 8 "
        "colourings -> out/astronaut_colorized.png",
    "pip install -e '.[demo]' && cinn demo # the apps in a web page: http://127.0.0.1:7860":
        "pip install -e '.[tensorflow,demo]' && cinn demo # the apps in a web page: "
        "http://127.0.0.1:7860",
    "pip install -e '.[demo]' && cinn demo # then open http://127.0.0.1:7860":
        "pip install -e '.[tensorflow,demo]' && cinn demo # then open http://127.0.0.1:7860",
    'pip install -e ".[bench]"': "pip install -e '.[tensorflow,jax,bench]'",
    "from apps.colorization import colorize": "from cinn.apps.colorization import colorize",
    "from apps.common.pretrained import load_model":
        "from cinn.apps.common.pretrained import load_model",
    "from apps.inpainting.infer import inpaint": "from cinn.apps.inpainting.infer import inpaint",
    # tests/run.sh runs the two backends side by side
    "pip install -e '.[test]' && bash tests/run.sh # tests (TensorFlow, then JAX backend)":
        "pip install -e '.[test]' && bash tests/run.sh # tests (TensorFlow and JAX backends, "
        "side by side)",
    # the default inpainting temperature became the calibrated one (docs/evaluation.md)
    "| Set5, 4x | T = 0 | T = 0.3 | T = 0.5 (default) | T = 0.7 | T = 0.9 | bicubic | NTIRE diversity, 10 samples at T = 0.5 |":
        "| Set5, 4x | T = 0 | T = 0.3 | T = 0.5 (former default) | T = 0.7 | T = 0.9 | bicubic | NTIRE diversity, 10 samples at T = 0.5 |",
    "| cINN single sample, T = 0.2 (default) | **18.33** | 0.412 | 1.96 |":
        "| cINN single sample, T = 0.2 (the former default) | **18.33** | 0.412 | 1.96 |",
    'out = inpaint(load_model("inpainting"), rgb_uint8, mask_bool, n=8, seed=0) '
    '# temperature 0.2':
        'out = inpaint(load_model("inpainting"), rgb_uint8, mask_bool, n=8, seed=0) '
        '# temperature 1.1',
    # the colorization default became the flow with global latents, without post-hoc
    # draws (docs/colorization.md, "Defaults"); model.keras is the former default
    "# the defaults: temperature=0.3, saturation=(0.6, 2.4), hue=40.0":
        "# the former defaults (model.keras): temperature=0.3, saturation=(0.6, 2.4), hue=40.0",
    "| `model.keras` | the default: the flow above after three training stages (below) | 1.1 MB |":
        "| `model.keras` | the former default: the local flow of any size after three training "
        "stages (below); `--weights` picks it (all latents at 0.5 unless `--temperature`) | "
        "1.1 MB |",
    "| `docs/` | the full records behind the README's figures: [colorization](docs/colorization.md) "
    "(training stages, designs tried), [super-resolution](docs/superres.md) and "
    "[inpainting](docs/inpainting.md) (earlier models, runs not shipped), [speed](docs/speed.md) "
    "(the CPU details) |":
        "| `docs/` | this documentation (`mkdocs.yml` builds it): the library guide, each app's "
        "model, training and evaluation, the sampling commands, deployment, speed and memory |",
}


def flat(text):
    """Runs of white space as one space (line breaks and column alignment may change)."""
    return re.sub(r"\s+", " ", text).strip()


def corpus():
    return flat("\n".join(page.read_text() for page in PAGES))


def inventory(name):
    return [flat(line) for line in (DATA / f"readme_{name}.txt").read_text().splitlines()
            if line.strip()]


def missing(items, text):
    return [item for item in items if REPLACED.get(item, item) not in text]


@pytest.mark.parametrize("name", ["commands", "table_rows"])
def test_no_command_or_table_row_of_the_long_readme_is_lost(name):
    lost = missing(inventory(name), corpus())
    assert not lost, f"{len(lost)} of readme_{name}.txt not in README.md or docs/: {lost}"


def lost_figures(figures, text):
    """Figures not in ``text`` as whole numbers (``2.3 s`` is not found in ``12.3 s``)."""
    return [f for f in figures if not re.search(rf"(?<![\w.,]){re.escape(f)}(?!\w)", text)]


def test_no_figure_of_the_long_readme_is_lost():
    lost = lost_figures(inventory("figures"), corpus())
    assert not lost, f"{len(lost)} figures not in README.md or docs/: {lost}"


def test_the_inventory_checks_fail_on_a_lost_line():
    text = flat("run `cinn train superres --data DIR`\n| a | b |\nabout 12.5 ms, 3,704 MB")
    assert missing(["cinn train superres --data DIR", "| a | b |"], text) == []
    assert missing(["cinn train superres --data DIR --out runs/x", "| a | c |"], text) == [
        "cinn train superres --data DIR --out runs/x", "| a | c |"]
    assert lost_figures(["12.5 ms", "3,704 MB", "2.5 ms", "704 MB", "1.5"], text) == [
        "2.5 ms", "704 MB", "1.5"]
    assert inventory("commands") and inventory("table_rows") and inventory("figures")
    assert "from apps.colorization import colorize" in inventory("commands")  # replaced
