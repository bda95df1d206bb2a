"""Specifications of the benchmark harness's arithmetic and table layout (benchmarks/run.py);
the benchmark itself never runs in the test suite."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"
_SPEC = importlib.util.spec_from_file_location("benchmark_run", _PATH)
bench = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = bench  # dataclasses look their module up while the file loads
_SPEC.loader.exec_module(bench)


def test_median_of_odd_and_even_counts_and_of_unsorted_values():
    assert bench.median([3.0]) == 3.0
    assert bench.median([5.0, 1.0, 3.0]) == 3.0
    assert bench.median([4.0, 1.0, 3.0, 2.0]) == 2.5


def test_median_of_nothing_is_an_error():
    with pytest.raises(ValueError):
        bench.median([])


def test_ratio_divides_and_is_none_when_a_side_is_missing_or_zero():
    assert bench.ratio(3.0, 2.0) == 1.5
    assert bench.ratio(None, 2.0) is None
    assert bench.ratio(3.0, None) is None
    assert bench.ratio(3.0, 0.0) is None


def test_verdict_passes_at_the_limit_and_fails_above_it():
    assert bench.verdict(1.3, 1.3) == "pass"
    assert bench.verdict(1.31, 1.3) == "FAIL"
    assert bench.verdict(None, 1.3) == "not run"


def test_table_aligns_the_first_column_left_and_the_others_right():
    table = bench.format_table(["command", "ms"], [["a", "1.5"], ["longer", "12.0"]])
    assert table.splitlines() == [
        "command    ms",
        "-------  ----",
        "a         1.5",
        "longer   12.0",
    ]


def test_number_prints_a_dash_for_a_missing_figure():
    assert bench.number(None) == "-"
    assert bench.number(1.234, 2) == "1.23"
