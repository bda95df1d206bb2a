"""`nomadtls status [prefix]` against a stand-in agent: the job list and every detail view
as Nomad prints them, prefix resolution with its ambiguity and no-match reports, -json,
-verbose, colour, and flags winning over variables."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from nomadtls.testing import Cluster, StandInAgent
from nomadtls_cli.main import app
from nomadtls_cli.status import Ambiguous, NoMatch, pick

BOLD = "\x1b[1m"


def status(agent, *args: str, env: dict | None = None):
    return CliRunner().invoke(app, ["status", *args],
                              env={"NOMAD_ADDR": agent.address, **(env or {})})


def ok(agent, *args: str, env: dict | None = None) -> str:
    result = status(agent, *args, env=env)
    assert (result.exit_code, result.stderr) == (0, ""), result.output
    return result.stdout


# -- the job list ------------------------------------------------------------------------

# The sample cluster's jobs as `nomad status` lists them.
JOB_LIST = """\
ID                          Type                 Priority  Status          Submit Date
backup                      batch                40        dead (stopped)  2023-11-14T22:15:20Z
cache                       service              50        running         2023-11-14T22:14:20Z
report                      batch/periodic       50        running         2023-11-14T22:16:20Z
report/periodic-1700000400  batch                50        dead            2023-11-14T22:20:00Z
transcode                   batch/parameterized  50        running         2023-11-14T22:17:20Z
"""


def test_no_prefix_lists_the_jobs_as_nomad_does(plain_agent):
    assert ok(plain_agent) == JOB_LIST


def test_every_namespace_adds_a_namespace_column_after_id(plain_agent):
    lines = ok(plain_agent, "-namespace=*").splitlines()

    assert lines[0].split() == ["ID", "Namespace", "Type", "Priority", "Status", "Submit",
                                "Date"]
    assert lines[1].split()[:3] == ["api", "apps", "service"]
    assert all(line.split()[1] == "default" for line in lines[2:])


def test_the_namespace_variable_set_to_star_also_adds_the_column(plain_agent):
    header = ok(plain_agent, env={"NOMAD_NAMESPACE": "*"}).splitlines()[0]

    assert header.split()[:2] == ["ID", "Namespace"]


def test_an_empty_cluster_has_no_running_jobs():
    with StandInAgent(Cluster()) as agent:
        assert ok(agent) == "No running jobs\n"


def test_the_list_is_one_request(plain_agent):
    ok(plain_agent)

    assert [(r.method, r.path) for r in plain_agent.requests] == [("GET", "/v1/jobs")]


# -- prefix resolution -------------------------------------------------------------------

def test_a_prefix_costs_one_search_over_every_context(plain_agent):
    ok(plain_agent, "transc")

    searches = [r for r in plain_agent.requests if r.path == "/v1/search"]
    assert len(searches) == 1
    assert searches[0].method == "PUT"
    assert searches[0].json() == {"Prefix": "transc", "Context": "all"}


def test_an_ambiguous_prefix_lists_each_context_as_nomad_does(plain_agent):
    result = status(plain_agent, "cac")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        'Multiple matches found for id "cac"', "",
        "Jobs:", "cache", "",
        "Allocs:", "cac0ffee-1d2e-4f3a-9b8c-7d6e5f4a3b2c",
    ]


def test_two_matches_in_one_context_are_ambiguous(plain_agent):
    result = status(plain_agent, "5b3e8c1a")

    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        "5b3e8c1a-0f4d-4c2b-8a9e-1c2d3e4f5a6b, 5b3e8c1a-7e6d-4b5a-9c8d-2e3f4a5b6c7d")


def test_no_match_is_reported_and_exits_1(plain_agent):
    result = status(plain_agent, "zzz")

    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == 'No matches returned for query "zzz"\n'


def test_a_kind_status_does_not_show_is_named_with_the_kinds_it_shows(cluster):
    matches = {"Matches": {"jobs": None, "volumes": ["pgdata"]}, "Truncations": {}}
    with StandInAgent(cluster) as agent:
        agent.add_route("PUT", "/v1/search", lambda request: (200, {}, matches))
        result = status(agent, "pg")

    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.splitlines() == [
        'Error: "pg" names an object of the kind "volumes", which status does not show',
        "It shows jobs, nodes, allocations, evaluations and deployments."]


def test_an_exact_id_wins_over_longer_matches_elsewhere():
    assert pick("cache", {"jobs": ["cache"], "allocs": ["cache0ff-..."]}) == ("jobs", "cache")


def test_a_lone_match_names_its_object():
    matches = {"jobs": None, "nodes": None, "allocs": ["cac0ffee-1d2e"], "evals": []}

    assert pick("cac0", matches) == ("allocs", "cac0ffee-1d2e")


def test_null_and_empty_contexts_are_no_match():
    with pytest.raises(NoMatch):
        pick("x", {"jobs": None, "nodes": [], "plugins": None})


def test_exact_matches_in_two_contexts_are_ambiguous():
    with pytest.raises(Ambiguous) as caught:
        pick("default", {"namespaces": ["default"], "node_pools": ["default"]})

    assert caught.value.lines() == ['Multiple matches found for id "default"', "",
                                    "Namespaces:", "default", "", "Node_pools:", "default"]


def test_ambiguity_lists_the_viewable_contexts_first():
    with pytest.raises(Ambiguous) as caught:
        pick("a", {"volumes": ["a1"], "evals": ["a2"], "jobs": ["a3", "a4"]})

    assert list(caught.value.matches) == ["jobs", "evals", "volumes"]


def test_an_object_status_cannot_show_is_an_error(plain_agent):
    plain_agent.add_route("PUT", "/v1/search", lambda request: (200, {}, {
        "Matches": {"jobs": None, "volumes": ["vol-1"]}, "Truncations": {}}))

    result = status(plain_agent, "vol")

    assert result.exit_code == 1
    assert result.stderr.startswith('Error: "vol" names an object of the kind "volumes"')


# -- detail views ------------------------------------------------------------------------

def blocks(text: str) -> dict[str, list[str]]:
    """The view cut at its blank lines, keyed by each block's first line ("" for the
    opening key = value block)."""
    parts = text.rstrip("\n").split("\n\n")
    found = {"": parts[0].splitlines()}
    for part in parts[1:]:
        title, *body = part.splitlines()
        found[title] = body
    return found


def key_values(lines: list[str]) -> dict[str, str]:
    """A key = value block as a dict, after checking that its = signs line up."""
    assert len({line.index(" = ") for line in lines}) == 1, "the = signs are not aligned"
    return {key.rstrip(): value for key, value in (line.split(" = ", 1) for line in lines)}


def holds(facts: dict[str, str], **expected: str) -> bool:
    """Whether `facts` has each expected value; keywords use _ for a space."""
    return all(facts.get(key.replace("_", " ")) == value for key, value in expected.items())


def test_a_job_shows_its_facts_summary_deployment_and_allocations(plain_agent):
    view = blocks(ok(plain_agent, "cache"))

    assert key_values(view[""]) == {
        "ID": "cache", "Name": "cache", "Submit Date": "2023-11-14T22:14:20Z",
        "Type": "service", "Priority": "50", "Datacenters": "dc1", "Namespace": "default",
        "Node Pool": "default", "Status": "running", "Periodic": "false",
        "Parameterized": "false"}
    assert view["Summary"] == [
        "Task Group  Queued  Starting  Running  Failed  Complete  Lost  Unknown",
        "redis       0       0         2        0       0         0     0"]
    assert key_values(view["Latest Deployment"]) == {
        "ID": "d9b1f3a5", "Status": "successful",
        "Description": "Deployment completed successfully"}
    assert view["Deployed"][1].split() == ["redis", "2", "2", "2", "0",
                                           "2023-11-14T22:23:20Z"]
    assert [row.split()[:2] for row in view["Allocations"][1:]] == [
        ["cac0ffee", "f3a9c1d2"], ["5b3e8c1a", "7c2e4a6b"]]


def test_verbose_shows_full_ids(plain_agent):
    view = blocks(ok(plain_agent, "cache", "-verbose"))

    assert view["Allocations"][1].split()[:2] == ["cac0ffee-1d2e-4f3a-9b8c-7d6e5f4a3b2c",
                                                  "f3a9c1d2-6b7e-4c8d-9e0f-1a2b3c4d5e6f"]


def test_a_periodic_job_shows_its_children_instead_of_a_summary(plain_agent):
    view = blocks(ok(plain_agent, "report"))

    assert key_values(view[""])["Periodic"] == "true"
    assert view["Children Job Summary"] == ["Pending  Running  Dead", "0        0        1"]
    assert "Summary" not in view and "Latest Deployment" not in view


def test_a_parameterized_job_shows_its_children(plain_agent):
    view = blocks(ok(plain_agent, "transcode"))

    assert key_values(view[""])["Parameterized"] == "true"
    assert "Children Job Summary" in view


def test_a_job_of_another_namespace_is_found_with_every_namespace(plain_agent):
    view = blocks(ok(plain_agent, "-namespace", "*", "api"))

    assert key_values(view[""])["Namespace"] == "apps"
    reads = [r for r in plain_agent.requests if r.path.startswith("/v1/job/")]
    assert {r.query.get("namespace") for r in reads} == {"apps"}


def test_a_node_shows_its_facts_and_allocations(plain_agent):
    view = blocks(ok(plain_agent, "f3a9"))

    assert holds(key_values(view[""]), ID="f3a9c1d2", Name="node-1", Drivers="docker,exec",
                 Class="<none>", Status="ready")
    assert view["Allocations"][0].split()[:3] == ["ID", "Job", "ID"]
    assert [row.split()[1] for row in view["Allocations"][1:]] == ["cache", "backup"]


def test_an_allocation_shows_its_facts_and_task_events(plain_agent):
    view = blocks(ok(plain_agent, "cac0"))

    assert holds(key_values(view[""]), ID="cac0ffee", Eval_ID="e1c4a7b0",
                 Client_Status="running", Desired_Description="<none>",
                 Deployment_Health="healthy")
    events = view['Task "redis" is "running"']
    assert events[:2] == ["Recent Events:", "Time                  Type        Description"]
    assert events[2].split()[1] == "Started"  # newest first


def test_an_evaluation_shows_its_facts(plain_agent):
    view = blocks(ok(plain_agent, "e1c4"))

    assert holds(key_values(view[""]), ID="e1c4a7b0", TriggeredBy="job-register",
                 Placement_Failures="false", Create_Time="2023-11-14T22:13:41Z")


def test_a_deployment_shows_its_facts_and_task_groups(plain_agent):
    view = blocks(ok(plain_agent, "d9b1"))

    assert key_values(view[""])["Status"] == "successful"
    assert view["Deployed"] == [
        "Task Group  Desired  Placed  Healthy  Unhealthy  Progress Deadline",
        "redis       2        2       2        0          2023-11-14T22:23:20Z"]


# -- -json -------------------------------------------------------------------------------

@pytest.mark.parametrize("spelling", ["-json", "--json"])
def test_json_prints_the_job_list_the_agent_sent_indented_4(plain_agent, spelling):
    text = ok(plain_agent, spelling)

    listed = json.loads(text)
    assert [job["ID"] for job in listed][:2] == ["backup", "cache"]
    assert text.splitlines()[1].startswith("    {") and text.startswith("[\n    {")
    assert text == json.dumps(listed, indent=4) + "\n"


def test_json_of_a_detail_view_holds_every_read_it_was_built_from(plain_agent, cluster):
    shown = json.loads(ok(plain_agent, "cache", "-json"))

    assert list(shown) == ["Job", "Summary", "LatestDeployment", "Allocations"]
    assert shown["Job"] == cluster.job("cache")
    assert shown["LatestDeployment"]["ID"].startswith("d9b1f3a5")
    assert len(shown["Allocations"]) == 2


def test_json_of_an_allocation_is_the_allocation(plain_agent):
    shown = json.loads(ok(plain_agent, "cac0", "-json"))

    assert shown["ID"] == "cac0ffee-1d2e-4f3a-9b8c-7d6e5f4a3b2c"


# -- colour ------------------------------------------------------------------------------

def test_no_colour_when_stdout_is_not_a_terminal(plain_agent):
    assert "\x1b[" not in ok(plain_agent, "cache")


@pytest.mark.parametrize("args, env", [(["-force-color"], {}),
                                       ([], {"NOMAD_CLI_FORCE_COLOR": "1"})])
def test_forcing_colour_styles_section_titles(plain_agent, args, env):
    assert f"{BOLD}Summary" in ok(plain_agent, "cache", *args, env=env)


@pytest.mark.parametrize("args, env", [
    (["-force-color", "-no-color"], {}),
    (["-force-color"], {"NOMAD_CLI_NO_COLOR": "1"}),
    (["-force-color"], {"NO_COLOR": "1"}),
    ([], {"NOMAD_CLI_FORCE_COLOR": "1", "NO_COLOR": "yes"}),
])
def test_turning_colour_off_wins_over_forcing_it(plain_agent, args, env):
    assert "\x1b[" not in ok(plain_agent, "cache", *args, env=env)


# -- flags and variables -----------------------------------------------------------------

@pytest.mark.parametrize("spelling", [["-address={}"], ["-address", "{}"], ["--address", "{}"],
                                      ["--address={}"]])
def test_the_address_flag_beats_the_variable_in_either_spelling(plain_agent, spelling):
    args = [word.format(plain_agent.address) for word in spelling]

    result = status(plain_agent, *args, env={"NOMAD_ADDR": "http://127.0.0.1:9"})

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ID")


def test_the_namespace_flag_beats_the_variable(plain_agent):
    text = ok(plain_agent, "-namespace=default", env={"NOMAD_NAMESPACE": "apps"})

    assert "cache" in text and "api" not in text
    assert {r.query.get("namespace") for r in plain_agent.requests} == {"default"}


def test_an_agent_that_is_not_there_is_two_plain_lines_and_exit_1():
    result = CliRunner().invoke(app, ["status"], env={"NOMAD_ADDR": "http://127.0.0.1:9"})

    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert 1 <= len(lines) <= 3 and lines[0].startswith("Error: ")
    assert "NOMAD_ADDR" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_token_never_reaches_the_output(plain_agent):
    secret = "8f2b9d6e-0c1a-4b7e-a3d5-secret000001"

    result = status(plain_agent, "zzz", "-token", secret)

    assert secret not in result.output and secret not in result.stderr
    assert plain_agent.requests[-1].headers["X-Nomad-Token"] == secret
