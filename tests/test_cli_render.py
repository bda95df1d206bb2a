"""The text building blocks of the views: tables, key = value blocks, dates, short IDs and
the colour decision."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nomadtls_cli.render import (Paint, iso_time, iso_times, job_list, json_text, key_values,
                                 short_id, table, use_color)


def stub(job_id="web", **fields):
    return {"ID": job_id, "Type": "service", "Priority": 50, "Status": "running",
            "SubmitTime": 1_700_000_000_000_000_000, "Namespace": "default", **fields}


def test_columns_are_two_spaces_apart_and_lines_have_no_trailing_space():
    assert table(["ID", "Type"], [["a", "batch"], ["longer-id", ""]]).splitlines() == [
        "ID         Type",
        "a          batch",
        "longer-id  <none>",
    ]


def test_key_values_align_the_equals_signs_and_show_empty_values_as_none():
    assert key_values([("ID", "web"), ("Description", ""), ("Count", 0)]).splitlines() == [
        "ID          = web",
        "Description = <none>",
        "Count       = 0",
    ]


@pytest.mark.parametrize("value, shown", [
    (1_700_000_000_000_000_000, "2023-11-14T22:13:20Z"),
    (1_700_000_000_999_999_999, "2023-11-14T22:13:20Z"),
    ("2023-11-14T23:13:20+01:00", "2023-11-14T22:13:20Z"),
    ("2023-11-14T22:13:20.123456789Z", "2023-11-14T22:13:20Z"),
    (0, "<none>"), (None, "<none>"), ("0001-01-01T00:00:00Z", "<none>"),
])
def test_times_read_as_iso_8601_in_utc(value, shown):
    assert iso_time(value) == shown


# Nomad's times: nanoseconds since the epoch up to the year 9999, RFC 3339 text, or nothing.
_times = st.one_of(st.integers(min_value=-10, max_value=253_402_300_799_999_999_999),
                   st.sampled_from([None, "", 0, "0001-01-01T00:00:00Z", "not a time"]),
                   st.datetimes().map(lambda when: when.isoformat() + "Z"))


@settings(max_examples=60)
@given(st.lists(_times, max_size=40))
def test_a_column_of_times_reads_as_each_time_alone(values):
    assert iso_times(values) == [iso_time(value) for value in values]


def test_times_a_second_apart_across_midnight_each_show_their_own_day():
    midnight = 1_700_006_400 * 10**9  # 2023-11-15T00:00:00Z

    assert iso_times([midnight - 10**9, midnight, midnight + 86_400 * 10**9 + 59 * 10**9]) == [
        "2023-11-14T23:59:59Z", "2023-11-15T00:00:00Z", "2023-11-16T00:00:59Z"]

def test_ids_are_cut_to_eight_characters_unless_verbose():
    uuid = "cac0ffee-1d2e-4f3a-9b8c-7d6e5f4a3b2c"

    assert short_id(uuid) == "cac0ffee"
    assert short_id(uuid, verbose=True) == uuid
    assert short_id("") == "<none>"


def test_the_job_type_gains_marks_for_periodic_and_parameterized():
    lines = job_list([stub("a", Periodic=True), stub("b", ParameterizedJob=True),
                      stub("c", Periodic=True, ParameterizedJob=True)]).splitlines()

    assert [line.split()[1] for line in lines[1:]] == [
        "service/periodic", "service/parameterized", "service/periodic/parameterized"]


def test_a_stopped_job_says_so_after_its_status():
    line = job_list([stub(Status="dead", Stop=True)]).splitlines()[1]

    assert "  dead (stopped)  " in line


def test_missing_fields_read_as_none():
    line = job_list([{"ID": "bare"}]).splitlines()[1]

    assert line.split() == ["bare", "<none>", "<none>", "<none>", "<none>"]


def test_a_long_list_keeps_every_row():
    jobs = [stub(f"job-{n:05d}") for n in range(2000)]

    lines = job_list(jobs).splitlines()

    assert len(lines) == 2001 and lines[-1].startswith("job-01999  ")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("no_color, force, stream, environ, expected", [
    (False, False, Terminal(), {}, True),
    (False, False, io.StringIO(), {}, False),
    (False, True, io.StringIO(), {}, True),
    (True, True, Terminal(), {}, False),
    (False, True, Terminal(), {"NO_COLOR": "1"}, False),
    (False, False, Terminal(), {"NO_COLOR": ""}, True),
])
def test_colour_needs_a_terminal_or_forcing_and_off_always_wins(no_color, force, stream,
                                                                environ, expected):
    assert use_color(no_color, force, stream, environ) is expected


def test_paint_colours_status_words_by_meaning_and_nothing_when_off():
    on, off = Paint(True), Paint(False)

    assert on.status("running") == "\x1b[32mrunning\x1b[0m"
    assert on.status("dead (stopped)").startswith("\x1b[31m")
    assert on.status("pending") == "\x1b[33mpending\x1b[0m"
    assert on.status("custom") == "custom"
    assert off.status("running") == "running" and off.title("Summary") == "Summary"


def test_coloured_values_keep_the_equals_signs_aligned():
    text = key_values([("Status", "running"), ("Job ID", "web")], Paint(True),
                      status_keys=["Status"])

    assert [line.index("=") for line in text.splitlines()] == [7, 7]


def test_an_evaluation_lists_its_failed_placements_and_related_evaluations():
    from nomadtls_cli.render import eval_detail

    text = eval_detail({
        "ID": "2deb5f06-a100-f01a-3316-5e501a4965e7", "Status": "blocked",
        "FailedTGAllocs": {"cache": {"NodesEvaluated": 3, "NodesFiltered": 1,
                                     "NodesExhausted": 2, "CoalescedFailures": 4}},
        "RelatedEvals": [{"ID": "0f98f7ea-59ae-4d90-d9bd-b8ce80b9e100", "Priority": 50,
                          "TriggeredBy": "node-drain", "Status": "complete",
                          "StatusDescription": ""}],
    })

    assert "Placement Failures = true" in text
    failed = text.split("\nFailed Placements\n", 1)[1].splitlines()
    assert failed[0].split()[:4] == ["Task", "Group", "Nodes", "Evaluated"]
    assert failed[1].split() == ["cache", "3", "1", "2", "5"]
    assert text.splitlines()[-1].split() == ["0f98f7ea", "50", "node-drain", "complete",
                                             "<none>"]


def test_a_deployment_with_canaries_shows_promotion_columns():
    from nomadtls_cli.render import deployment_detail

    text = deployment_detail({"ID": "70638f62-5c19-193e-30d6-f9d6e689ab8e", "TaskGroups": {
        "cache": {"Promoted": False, "DesiredCanaries": 1, "DesiredTotal": 3,
                  "PlacedAllocs": 1, "HealthyAllocs": 0, "UnhealthyAllocs": 0}}})

    header, row = text.split("\nDeployed\n", 1)[1].splitlines()
    assert header.split()[:4] == ["Task", "Group", "Promoted", "Desired"]
    assert row.split() == ["cache", "false", "3", "1", "1", "0", "0", "<none>"]


def test_a_job_without_allocations_says_none_were_placed():
    from nomadtls_cli.render import job_detail

    text = job_detail({"Job": {"ID": "web", "Type": "service"}, "Summary": None,
                       "LatestDeployment": None, "Allocations": []})

    assert text.endswith("\nAllocations\nNo allocations placed")


# What a JSON answer decodes to, with the odd values json.dumps also writes: non-finite
# floats, keys that are numbers, tuples.
_scalars = (st.none() | st.booleans() | st.integers() | st.floats() |
            st.text(max_size=12))
_json_values = st.recursive(
    _scalars,
    lambda inner: (st.lists(inner, max_size=5) | st.tuples(inner, inner) |
                   st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=5)),
    max_leaves=30)


@settings(max_examples=150)
@given(_json_values)
def test_json_output_is_exactly_what_json_dumps_writes_with_an_indent_of_4(value):
    assert json_text(value) == json.dumps(value, indent=4)


def test_json_output_of_a_job_list_matches_json_dumps():
    jobs = [stub(f"job-{n}", Datacenters=["dc1", "dc2"], Meta=None, Periodic=False,
                 JobSummary={"Summary": {"web": {"Running": n, "Failed": 0}},
                             "Children": {}, "Ratio": n / 3})
            for n in range(50)]

    assert json_text(jobs) == json.dumps(jobs, indent=4)


def test_json_output_refuses_what_json_refuses():
    with pytest.raises(TypeError):
        json_text({"when": {1, 2}})
