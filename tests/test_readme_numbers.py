"""README's speed numbers come from BENCHMARKS.md: every measured number in README.md's
"## Speed and reproducibility" section (a ratio like 3.2x, a share like 0.2%, a decimal
like 15.9) appears in BENCHMARKS.md, so the two cannot drift apart again (issue 28)."""
import pathlib
import re

REPO = pathlib.Path(__file__).resolve().parent.parent
SECTION = "## Speed and reproducibility"
# measured numbers: decimals, and integers written as a ratio or a percentage
MEASURED = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:x|%)(?!\w)|(?<![\w.])\d+\.\d+(?![\w.])")


def speed_section(text: str) -> str:
    assert SECTION in text, f"README.md has no {SECTION!r} section"
    return text.split(SECTION, 1)[1].split("\n## ", 1)[0]


def measured_numbers(text: str) -> list[str]:
    return MEASURED.findall(text)


def test_the_pattern_finds_ratios_shares_and_decimals_only():
    text = "UCF main, batch 256, 2-vCPU: 3.19x (2.93x), 4x, 0.2% of an epoch, 15.9 steps/s"
    assert measured_numbers(text) == ["3.19x", "2.93x", "4x", "0.2%", "15.9"]


def test_every_number_in_readmes_speed_section_is_in_benchmarks_md():
    section = speed_section((REPO / "README.md").read_text())
    benchmarks = (REPO / "BENCHMARKS.md").read_text()
    numbers = measured_numbers(section)
    assert numbers, "the speed section quotes no measured number"
    missing = [n for n in numbers
               if not re.search(r"(?<![\w.])" + re.escape(n) + r"(?![\w])", benchmarks)]
    assert not missing, f"README.md's speed section quotes {missing}, not in BENCHMARKS.md"
