"""docs/benchmarks.md says which command runs which benchmark; this keeps it true to the
Makefile and to the benchmarks that record a table."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _recipe(target: str) -> set[str]:
    """The benchmarks a Makefile target runs (``-m benchmarks.<name>``)."""
    text = (ROOT / "Makefile").read_text()
    body = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", text, re.MULTILINE)
    assert body is not None, f"no {target} target in the Makefile"
    return set(re.findall(r"-m benchmarks\.(\w+)", body.group(1)))


def _said() -> dict[str, set[str]]:
    """What the page's opening says ``make bench``, ``make chaos`` and the sections run."""
    opening = (ROOT / "docs" / "benchmarks.md").read_text().split("\n## ", 1)[0]
    opening = " ".join(opening.split())
    bench = re.search(r"`make bench` runs (.*?) \(each", opening)
    chaos = re.search(r"`make chaos` runs (.*?);", opening)
    own = re.search(
        r"; ((?:`\w+`,? (?:and )?)+)are run by the command in their own section", opening
    )
    assert bench, opening
    assert chaos, opening
    assert own, opening
    return {
        key: set(re.findall(r"`(\w+)`", found.group(1)))
        for key, found in (("bench", bench), ("chaos", chaos), ("own", own))
    }


def test_the_page_names_what_make_bench_and_make_chaos_run() -> None:
    said = _said()
    assert said["bench"] == _recipe("bench")
    assert said["chaos"] == _recipe("chaos")


def test_every_benchmark_that_records_a_table_is_named_with_its_command() -> None:
    recording = {
        path.stem
        for path in (ROOT / "benchmarks").glob("*.py")
        if path.stem != "record" and "record(" in path.read_text()
    }
    said = _said()
    named = said["bench"] | said["chaos"] | said["own"]
    assert named == recording
    assert not said["own"] & (said["bench"] | said["chaos"])
