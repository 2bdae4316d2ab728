"""Made the inventory of the long README once, before it became the product's front
page: every line of its fenced code blocks, every table row and every figure (a number
with a decimal point, a thousands comma or a unit) of its prose, as of commit f62d169.
``tests/test_docs.py`` checks that each still appears in README.md or ``docs/``.

    python tests/data/extract_readme.py      # rewrites tests/data/readme_*.txt
"""
import re
import subprocess
from pathlib import Path

COMMIT = "f62d169"
HERE = Path(__file__).resolve().parent
UNITS = (r"%|dB|MB|GB|MiB|GiB|ms|s|min|h|M|k|x|GFLOP/s|TFLOP/s|GFLOP|TFLOP|step/s|img/s"
         r"|steps?|parameters|images|pixels|photos|channels|crops|megapixels|nats|bits|grey levels"
         r"|Lab units|degrees|samples|rounds|epochs|processes|mantissa bits|GFLOP per")
FIGURE = re.compile(rf"(?<![\w.,/-])(\d[\d,]*(?:\.\d+)?(?:e-?\d+)?)(?:\s?({UNITS}))?(?![\w])")


def figures(text):
    """Numbers of the prose that carry information: with a unit, a decimal point,
    a thousands comma or an exponent (bare small integers are left out)."""
    found = []
    for m in FIGURE.finditer(text):
        number, unit = m.groups()
        if not unit and not re.search(r"\d[.,e]-?\d", number):
            continue
        found.append(m.group(0) if unit else number.rstrip(",."))
    return found


def main():
    readme = subprocess.run(["git", "show", f"{COMMIT}:README.md"], cwd=HERE, text=True,
                            capture_output=True, check=True).stdout
    fenced, rows, prose, in_fence = [], [], [], False
    for line in readme.splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        elif in_fence:
            if line.strip():
                fenced.append(line.strip())
        elif line.startswith("|"):
            if not re.fullmatch(r"[|\s:-]+", line):
                rows.append(line.strip())
        else:
            prose.append(line)
    text = re.sub(r"\s+", " ", "\n".join(prose))
    unique = lambda items: list(dict.fromkeys(items))  # noqa: E731 (first order kept)
    for name, items in (("commands", fenced), ("table_rows", rows),
                        ("figures", figures(text))):
        (HERE / f"readme_{name}.txt").write_text("\n".join(unique(items)) + "\n")
        print(f"readme_{name}.txt: {len(unique(items))} lines")


if __name__ == "__main__":
    main()
