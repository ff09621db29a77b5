"""The chart README's table of values is generated from values.yaml, and this test keeps it so.

values.yaml documents a value with a comment starting `# --` right above its key (the helm-docs
convention); a documented map covers the keys inside it. The test fails when a value has no such
comment, or when the README's table differs from the one values.yaml gives: a value added,
removed, renamed, or its default or description changed on one side only.
`python -m tests.unit.test_chart_readme` (run by `make manifests`) rewrites the table.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parents[2] / "charts" / "taskmanager-operator"
VALUES = CHART / "values.yaml"
README = CHART / "README.md"
BEGIN = "<!-- values: generated from values.yaml by `make manifests`; do not edit -->"
END = "<!-- end of values -->"

_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z][\w]*):")
_COMMENT = re.compile(r"^ *# ?(?P<text>.*)$")


def documented_values(text: str) -> dict[str, str]:
    """Dotted path -> description, for each key with a `# --` comment block right above it."""
    documented: dict[str, str] = {}
    parents: list[tuple[int, str]] = []
    comment: list[str] = []
    for line in text.splitlines():
        if (match := _COMMENT.match(line)) is not None:
            comment.append(match["text"])
            continue
        if (match := _KEY.match(line)) is not None:
            indent = len(match["indent"])
            while parents and parents[-1][0] >= indent:
                parents.pop()
            path = ".".join([*(key for _, key in parents), match["key"]])
            parents.append((indent, match["key"]))
            # Only the block right above the key counts; an earlier `# --` is another key's.
            starts = [i for i, text in enumerate(comment) if text.startswith("-- ")]
            if starts:
                block = comment[starts[-1] :]
                block[0] = block[0].removeprefix("-- ")
                documented[path] = " ".join(part.strip() for part in block)
        comment = []
    return documented


def leaves(values: Any, path: str = "") -> Iterator[str]:
    """Every value's dotted path; an empty map or list is a value of its own."""
    if isinstance(values, dict) and values:
        for key, value in values.items():
            yield from leaves(value, f"{path}.{key}" if path else key)
    else:
        yield path


def lookup(values: Any, path: str) -> Any:
    for key in path.split("."):
        values = values[key]
    return values


def values_table() -> str:
    text = VALUES.read_text()
    values = yaml.safe_load(text)
    rows = ["| value | default | description |", "|---|---|---|"]
    for path, description in documented_values(text).items():
        default = json.dumps(lookup(values, path), separators=(", ", ": "))
        # Escaped so Markdown shows `|` and `<release>` instead of reading them as syntax.
        cell = description.replace("|", "\\|").replace("<", "\\<")
        rows.append(f"| `{path}` | `{default}` | {cell} |")
    return "\n".join(rows)


def readme_with_table(readme: str) -> str:
    before, _, rest = readme.partition(BEGIN)
    _, _, after = rest.partition(END)
    return f"{before}{BEGIN}\n{values_table()}\n{END}{after}"


def test_every_value_is_documented() -> None:
    text = VALUES.read_text()
    documented = documented_values(text)
    undocumented = [
        leaf
        for leaf in leaves(yaml.safe_load(text))
        if not any(leaf == path or leaf.startswith(f"{path}.") for path in documented)
    ]
    assert not undocumented, f"values.yaml: no `# --` comment above {undocumented}"


def test_the_readme_lists_every_value_and_no_other() -> None:
    readme = README.read_text()
    assert BEGIN in readme, f"{README.name} lost its generated-table markers"
    assert END in readme, f"{README.name} lost its generated-table markers"
    assert readme == readme_with_table(readme), (
        f"{README} differs from values.yaml: run `make manifests`"
    )


if __name__ == "__main__":
    README.write_text(readme_with_table(README.read_text()))
    sys.exit(0)
