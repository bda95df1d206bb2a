"""Specifications of nomadtls.testing: the stand-in agent answers Nomad's read API the way
a real agent does, in every transport mode, and misbehaves exactly when told to.

Clients here are plain `requests`, `http.client` and `ssl`, never nomadtls's own client.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import shutil
import socket
import ssl
import tempfile
import threading
import uuid

import pytest
import requests

from nomadtls.testing import Cluster, LocalPKI, StandInAgent, parse_wait

ALLOC_CACHE = "cac0ffee-1d2e-4f3a-9b8c-7d6e5f4a3b2c"
NODE_1 = "f3a9c1d2-6b7e-4c8d-9e0f-1a2b3c4d5e6f"
QUERY_META = ("X-Nomad-Index", "X-Nomad-KnownLeader", "X-Nomad-LastContact")


def get(agent: StandInAgent, path: str, **kwargs) -> requests.Response:
    kwargs.setdefault("timeout", 10)
    return requests.get(agent.address + path, **kwargs)


def search(agent: StandInAgent, prefix: str, context: str = "all", *, method: str = "PUT",
           **kwargs) -> dict:
    response = requests.request(method, agent.address + "/v1/search", timeout=10,
                                json={"Prefix": prefix, "Context": context}, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 10) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


# --- the sample cluster ----------------------------------------------------------------------

def test_sample_cluster_is_consistent(cluster):
    jobs = {(j["Namespace"], j["ID"]) for j in cluster.jobs}
    nodes = {n["ID"] for n in cluster.nodes}
    evals = {e["ID"] for e in cluster.evaluations}
    for alloc in cluster.allocations:
        assert (alloc["Namespace"], alloc["JobID"]) in jobs
        assert alloc["NodeID"] in nodes
        assert alloc["EvalID"] in evals
        uuid.UUID(alloc["ID"])
    for item in cluster.evaluations + cluster.deployments:
        assert (item["Namespace"], item["JobID"]) in jobs
        uuid.UUID(item["ID"])


def test_sample_cluster_has_every_kind_of_job(cluster):
    by_id = {j["ID"]: j for j in cluster.jobs}
    assert by_id["cache"]["Type"] == "service" and by_id["cache"]["Status"] == "running"
    assert by_id["backup"]["Stop"] is True and by_id["backup"]["Status"] == "dead"
    assert by_id["report"]["Periodic"]["Enabled"] is True
    assert by_id["report/periodic-1700000400"]["ParentID"] == "report"
    assert by_id["transcode"]["ParameterizedJob"]["Payload"] == "required"
    assert by_id["api"]["Namespace"] == "apps"
    assert len(cluster.nodes) == 2


def test_sample_cluster_ids_share_prefixes_across_kinds(cluster):
    alloc_ids = [a["ID"] for a in cluster.allocations]
    assert any(a.startswith("cac") for a in alloc_ids)
    assert sum(a.startswith("5b3e8c1a") for a in alloc_ids) == 2


def test_with_jobs_generates_distinct_jobs():
    big = Cluster.with_jobs(2_000)
    assert len(big.jobs) == 2_000
    assert len({j["ID"] for j in big.jobs}) == 2_000
    assert {j["Type"] for j in big.jobs} == {"service", "batch", "system"}


# --- jobs ---------------------------------------------------------------------------------------

def test_jobs_lists_the_default_namespace_with_query_metadata(plain_agent):
    response = get(plain_agent, "/v1/jobs")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Nomad-Index"] == str(plain_agent.cluster.index)
    assert response.headers["X-Nomad-KnownLeader"] == "true"
    assert response.headers["X-Nomad-LastContact"] == "0"
    ids = [job["ID"] for job in response.json()]
    assert ids == ["backup", "cache", "report", "report/periodic-1700000400", "transcode"]


def test_jobs_stub_carries_what_a_status_view_needs(plain_agent):
    stubs = {job["ID"]: job for job in get(plain_agent, "/v1/jobs").json()}
    assert stubs["report"]["Periodic"] is True and stubs["report"]["ParameterizedJob"] is False
    assert stubs["transcode"]["ParameterizedJob"] is True
    assert stubs["backup"]["Stop"] is True
    assert stubs["cache"]["SubmitTime"] == 1_700_000_060_000_000_000
    assert stubs["cache"]["JobSummary"]["Summary"]["redis"]["Running"] == 2
    assert stubs["report"]["JobSummary"]["Children"] == {"Pending": 0, "Running": 0,
                                                          "Dead": 1}
    assert "TaskGroups" not in stubs["cache"]


def test_jobs_by_namespace_and_prefix(plain_agent):
    assert [j["ID"] for j in get(plain_agent, "/v1/jobs?namespace=apps").json()] == ["api"]
    everything = get(plain_agent, "/v1/jobs", params={"namespace": "*"}).json()
    assert {(j["Namespace"], j["ID"]) for j in everything} >= {("apps", "api"),
                                                               ("default", "cache")}
    assert [j["ID"] for j in get(plain_agent, "/v1/jobs?prefix=rep").json()] == [
        "report", "report/periodic-1700000400"]


def test_jobs_pagination_walks_every_job_once(plain_agent):
    seen, token, pages = [], None, 0
    while True:
        params = {"namespace": "*", "per_page": "2"}
        if token:
            params["next_token"] = token
        response = get(plain_agent, "/v1/jobs", params=params)
        seen += [(j["Namespace"], j["ID"]) for j in response.json()]
        pages += 1
        token = response.headers.get("X-Nomad-NextToken")
        if token is None:
            break
        assert token == "{}.{}".format(*sorted(
            (j["Namespace"], j["ID"]) for j in plain_agent.cluster.jobs)[len(seen)])
    assert pages == 3
    assert seen == sorted((j["Namespace"], j["ID"]) for j in plain_agent.cluster.jobs)


def test_last_page_has_no_next_token(plain_agent):
    response = get(plain_agent, "/v1/jobs?per_page=50")
    assert len(response.json()) == 5
    assert "X-Nomad-NextToken" not in response.headers


def test_job_detail_summary_and_children(plain_agent):
    job = get(plain_agent, "/v1/job/cache").json()
    assert job["TaskGroups"][0]["Name"] == "redis" and job["Namespace"] == "default"
    summary = get(plain_agent, "/v1/job/cache/summary").json()
    assert summary["JobID"] == "cache" and summary["Summary"]["redis"]["Running"] == 2


def test_job_id_with_a_slash_is_found_percent_encoded(plain_agent):
    response = get(plain_agent, "/v1/job/report%2Fperiodic-1700000400")
    assert response.json()["ParentID"] == "report"
    assert plain_agent.requests[-1].path == "/v1/job/report%2Fperiodic-1700000400"


def test_job_is_looked_up_in_the_requested_namespace(plain_agent):
    missing = get(plain_agent, "/v1/job/api")
    assert missing.status_code == 404
    assert missing.text == "job not found"
    assert missing.headers["Content-Type"].startswith("text/plain")
    assert get(plain_agent, "/v1/job/api?namespace=apps").json()["ID"] == "api"


def test_job_allocations_evaluations_and_deployments(plain_agent):
    allocs = get(plain_agent, "/v1/job/cache/allocations").json()
    assert sorted(a["Name"] for a in allocs) == ["cache.redis[0]", "cache.redis[1]"]
    assert all("Job" not in a and "TaskStates" in a for a in allocs)
    evals = get(plain_agent, "/v1/job/cache/evaluations").json()
    assert [e["TriggeredBy"] for e in evals] == ["job-register"]
    latest = get(plain_agent, "/v1/job/cache/deployment").json()
    assert latest["JobID"] == "cache" and latest["TaskGroups"]["redis"]["HealthyAllocs"] == 2
    assert [d["ID"] for d in get(plain_agent, "/v1/job/cache/deployments").json()] == [
        latest["ID"]]


def test_job_without_deployment_answers_null(plain_agent):
    response = get(plain_agent, "/v1/job/backup/deployment")
    assert response.status_code == 200
    assert response.json() is None


# --- nodes, allocations, evaluations, deployments ------------------------------------------

def test_nodes_list_stubs_and_detail(plain_agent):
    stubs = get(plain_agent, "/v1/nodes").json()
    assert sorted(n["Name"] for n in stubs) == ["node-1", "node-2"]
    assert "NodeResources" not in stubs[0]
    node = get(plain_agent, f"/v1/node/{NODE_1}").json()
    assert node["Name"] == "node-1" and "NodeResources" in node
    allocs = get(plain_agent, f"/v1/node/{NODE_1}/allocations").json()
    assert {a["NodeID"] for a in allocs} == {NODE_1} and len(allocs) == 2
    assert get(plain_agent, "/v1/node/0000").text == "node not found"


def test_allocation_detail_has_job_and_task_states(plain_agent):
    alloc = get(plain_agent, f"/v1/allocation/{ALLOC_CACHE}").json()
    assert alloc["Job"]["ID"] == "cache"
    events = alloc["TaskStates"]["redis"]["Events"]
    assert [e["Type"] for e in events] == ["Received", "Task Setup", "Started"]
    assert isinstance(events[0]["Time"], int)
    missing = get(plain_agent, "/v1/allocation/ffffffff-0000-0000-0000-000000000000")
    assert (missing.status_code, missing.text) == (404, "alloc not found")


def test_allocations_list_by_namespace(plain_agent):
    default = get(plain_agent, "/v1/allocations").json()
    assert len(default) == 4 and all("Job" not in a for a in default)
    assert [a["JobID"] for a in get(plain_agent, "/v1/allocations?namespace=apps").json()] \
        == ["api"]
    assert len(get(plain_agent, "/v1/allocations?namespace=*").json()) == 5


def test_evaluations_and_deployments(plain_agent):
    evals = get(plain_agent, "/v1/evaluations").json()
    assert len(evals) == 3
    one = get(plain_agent, f"/v1/evaluation/{evals[0]['ID']}").json()
    assert one == evals[0]
    deployments = get(plain_agent, "/v1/deployments?namespace=*").json()
    assert sorted(d["JobID"] for d in deployments) == ["api", "cache"]
    detail = get(plain_agent, f"/v1/deployment/{deployments[0]['ID']}").json()
    assert detail["TaskGroups"]
    assert get(plain_agent, "/v1/evaluation/nope").text == "eval not found"
    assert get(plain_agent, "/v1/deployment/nope").text == "deployment not found"


# --- search ------------------------------------------------------------------------------------

def test_search_all_contexts_with_nulls_for_empty_ones(plain_agent):
    answer = search(plain_agent, "cac")
    assert answer["Matches"]["jobs"] == ["cache"]
    assert answer["Matches"]["allocs"] == [ALLOC_CACHE]
    assert answer["Matches"]["nodes"] is None
    assert answer["Matches"]["evals"] is None
    assert answer["Truncations"]["jobs"] is False
    assert set(answer["Matches"]) >= {"jobs", "nodes", "allocs", "evals", "deployment"}


def test_search_by_post_and_one_context(plain_agent):
    answer = search(plain_agent, "5b3e8c1a", "allocs", method="POST")
    assert list(answer["Matches"]) == ["allocs"]
    assert len(answer["Matches"]["allocs"]) == 2


def test_search_matches_jobs_within_the_namespace(plain_agent):
    assert search(plain_agent, "api")["Matches"]["jobs"] is None
    assert search(plain_agent, "api", params={"namespace": "apps"})["Matches"]["jobs"] == [
        "api"]


def test_search_caps_each_context_at_twenty():
    with StandInAgent(Cluster.with_jobs(25)) as agent:
        answer = search(agent, "job-")
    assert len(answer["Matches"]["jobs"]) == 20
    assert answer["Truncations"]["jobs"] is True


def test_search_refuses_get_and_unknown_context(plain_agent):
    assert get(plain_agent, "/v1/search").status_code == 405
    response = requests.put(plain_agent.address + "/v1/search", timeout=10,
                            json={"Prefix": "a", "Context": "galaxies"})
    assert response.status_code == 400


# --- agent, status, regions, and paths that do not exist ---------------------------------

def test_agent_self_names_region_and_version(plain_agent):
    response = get(plain_agent, "/v1/agent/self")
    me = response.json()
    assert me["config"]["Region"] == "global"
    assert me["config"]["Datacenter"] == "dc1"
    assert me["config"]["Version"]["Version"] == plain_agent.cluster.version
    assert me["member"]["Tags"]["region"] == "global"
    assert me["stats"]["nomad"]["leader"] == "true"
    assert not any(name in response.headers for name in QUERY_META)


@pytest.mark.parametrize("path, expected", [
    ("/v1/status/leader", "127.0.0.1:4647"),
    ("/v1/regions", ["global"]),
])
def test_status_and_regions_answer_json_without_query_metadata(plain_agent, path, expected):
    response = get(plain_agent, path)
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == expected
    assert not any(name in response.headers for name in QUERY_META)


def test_unknown_path_is_a_plain_404(plain_agent):
    response = get(plain_agent, "/v1/galaxy")
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "not found" in response.text


def test_region_is_recorded_and_otherwise_ignored(plain_agent):
    assert get(plain_agent, "/v1/jobs?region=eu-west").status_code == 200
    assert plain_agent.requests[-1].query["region"] == "eu-west"


def test_pretty_indents_json(plain_agent):
    assert get(plain_agent, "/v1/regions?pretty").text == '[\n    "global"\n]'


def test_large_answers_are_gzipped_when_the_client_accepts(plain_agent):
    zipped = get(plain_agent, "/v1/jobs?namespace=*", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    plain = get(plain_agent, "/v1/jobs?namespace=*", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    assert zipped.json() == plain.json()


# --- blocking queries ------------------------------------------------------------------------

@pytest.mark.parametrize("wait", ["100ms", "0.1s", "100"])
def test_blocking_query_answers_after_the_wait_with_the_same_index(plain_agent, wait):
    index = plain_agent.cluster.index
    response = get(plain_agent, f"/v1/jobs?index={index}&wait={wait}")
    assert response.status_code == 200
    assert response.headers["X-Nomad-Index"] == str(index)


def test_blocking_query_returns_when_the_cluster_changes():
    cluster = Cluster.sample()
    with StandInAgent(cluster) as agent:
        index = cluster.index
        answers = []
        waiter = threading.Thread(target=lambda: answers.append(
            get(agent, f"/v1/jobs?index={index}&wait=5m", timeout=30)))
        waiter.start()
        while not agent.requests:
            threading.Event().wait(0.01)
        cluster.touch()
        waiter.join(timeout=30)
    assert answers and answers[0].headers["X-Nomad-Index"] == str(index + 1)


def test_older_index_answers_at_once(plain_agent):
    # A blocking query for an index already passed does not wait: a 5 s client timeout
    # against a 5 minute wait shows it.
    response = get(plain_agent, "/v1/jobs?index=1&wait=5m", timeout=5)
    assert response.status_code == 200


def test_bad_wait_and_index_are_400(plain_agent):
    assert get(plain_agent, "/v1/jobs?index=999&wait=soon").status_code == 400
    assert get(plain_agent, "/v1/jobs?index=x").status_code == 400


@pytest.mark.parametrize("text, seconds", [
    ("100ms", 0.1), ("5s", 5), ("5m", 300), ("1m30s", 90), ("300000ms", 300), ("250", 0.25),
    ("20m", 600),
])
def test_wait_reads_go_durations_capped_at_ten_minutes(text, seconds):
    assert parse_wait(text) == pytest.approx(seconds)


# --- faults ----------------------------------------------------------------------------------

def test_fail_next_answers_the_given_status_then_recovers(plain_agent):
    plain_agent.fail_next(2)
    first, second, third = (get(plain_agent, "/v1/regions") for _ in range(3))
    assert (first.status_code, first.text) == (503, "No cluster leader")
    assert second.status_code == 503
    assert third.status_code == 200
    plain_agent.fail_next(1, 500, "rpc error: eval broker disabled")
    assert get(plain_agent, "/v1/jobs").text == "rpc error: eval broker disabled"


def test_drop_next_closes_without_answer(plain_agent):
    plain_agent.drop_next(1)
    conn = http.client.HTTPConnection("127.0.0.1", plain_agent.port, timeout=10)
    conn.request("GET", "/v1/regions")
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        conn.getresponse()
    conn.close()
    assert get(plain_agent, "/v1/regions").status_code == 200
    assert len(plain_agent.requests) == 2


def test_stall_next_says_nothing_for_a_while(plain_agent):
    plain_agent.stall_next(1, 5)
    conn = http.client.HTTPConnection("127.0.0.1", plain_agent.port, timeout=0.2)
    conn.request("GET", "/v1/regions")
    with pytest.raises(TimeoutError):
        conn.getresponse()
    conn.close()
    assert get(plain_agent, "/v1/regions").status_code == 200


def test_stop_ends_a_stall(cluster):
    agent = StandInAgent(cluster).start()
    agent.stall_next(1, 600)
    conn = http.client.HTTPConnection("127.0.0.1", agent.port, timeout=30)
    conn.request("GET", "/v1/regions")
    agent.stop()
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        conn.getresponse()
    conn.close()


# --- requests, routes, tokens ----------------------------------------------------------------

def test_requests_are_recorded_with_headers_query_and_body(plain_agent):
    requests.put(plain_agent.address + "/v1/search?namespace=apps", timeout=10,
                 json={"Prefix": "a", "Context": "jobs"}, headers={"X-Nomad-Token": "t0k"})
    recorded = plain_agent.requests[-1]
    assert (recorded.method, recorded.path) == ("PUT", "/v1/search")
    assert recorded.query == {"namespace": "apps"}
    assert recorded.headers["x-nomad-token"] == "t0k"
    assert recorded.json() == {"Prefix": "a", "Context": "jobs"}
    assert recorded.client_cert is None


def test_added_route_overrides_built_ins(plain_agent):
    plain_agent.add_route("GET", "/v1/regions", lambda req: (
        418, {"X-Teapot": "yes"}, {"asked": req.query.get("q")}))
    response = get(plain_agent, "/v1/regions?q=tea")
    assert response.status_code == 418
    assert response.headers["X-Teapot"] == "yes"
    assert response.json() == {"asked": "tea"}
    plain_agent.add_route("GET", "/v1/text", lambda req: (200, None, "hello"))
    assert get(plain_agent, "/v1/text").headers["Content-Type"].startswith("text/plain")


def test_a_failing_route_answers_500_naming_the_error(plain_agent):
    def broken(request):
        raise KeyError("Allocations")

    plain_agent.add_route("GET", "/v1/broken", broken)
    response = get(plain_agent, "/v1/broken")
    assert response.status_code == 500
    assert "KeyError" in response.text


def test_oversized_body_is_refused_before_it_is_read(plain_agent):
    conn = http.client.HTTPConnection("127.0.0.1", plain_agent.port, timeout=10)
    conn.putrequest("PUT", "/v1/search")
    conn.putheader("Content-Length", str(2 << 20))
    conn.endheaders()
    assert conn.getresponse().status == 413
    conn.close()


def test_changes_show_after_touch():
    cluster = Cluster.sample()
    with StandInAgent(cluster) as agent:
        before = get(agent, "/v1/jobs?prefix=new").json()
        cluster.jobs.append({**cluster.job("cache"), "ID": "new-job", "Name": "new-job"})
        index = cluster.touch()
        response = get(agent, "/v1/jobs?prefix=new")
    assert before == []
    assert [job["ID"] for job in response.json()] == ["new-job"]
    assert response.headers["X-Nomad-Index"] == str(index)


def test_token_is_demanded_when_set(cluster):
    with StandInAgent(cluster, token="s3cret") as agent:
        missing = get(agent, "/v1/jobs")
        wrong = get(agent, "/v1/jobs", headers={"X-Nomad-Token": "guess"})
        right = get(agent, "/v1/jobs", headers={"X-Nomad-Token": "s3cret"})
        bearer = get(agent, "/v1/jobs", headers={"Authorization": "Bearer s3cret"})
        leader = get(agent, "/v1/status/leader")
    assert (missing.status_code, missing.text) == (403, "Permission denied")
    assert (wrong.status_code, wrong.text) == (403, "ACL token not found")
    assert right.status_code == bearer.status_code == leader.status_code == 200


def test_keep_alive_serves_several_requests_on_one_connection(plain_agent):
    conn = http.client.HTTPConnection("127.0.0.1", plain_agent.port, timeout=10)
    for _ in range(3):
        conn.request("GET", "/v1/regions")
        response = conn.getresponse()
        assert response.status == 200 and json.loads(response.read()) == ["global"]
    local_port = conn.sock.getsockname()[1]
    conn.close()
    assert local_port


def test_stopped_agent_has_no_address_and_stops_once(cluster):
    agent = StandInAgent(cluster).start()
    assert agent.address.startswith("http://127.0.0.1:")
    agent.stop()
    agent.stop()
    assert agent.address == "" and agent.port is None


# --- TLS, mutual TLS, unix socket -----------------------------------------------------------

def test_tls_agent_serves_a_client_trusting_the_ca(tls_agent, pki):
    assert tls_agent.address.startswith("https://127.0.0.1:")
    response = get(tls_agent, "/v1/status/leader", verify=str(pki.ca_file))
    assert response.json() == "127.0.0.1:4647"


def test_plain_http_on_tls_port_gets_go_reply(tls_agent):
    response = requests.get(tls_agent.address.replace("https://", "http://") + "/v1/jobs",
                            timeout=10)
    assert response.status_code == 400
    assert response.text == "Client sent an HTTP request to an HTTPS server.\n"
    assert tls_agent.requests[-1].path == "/v1/jobs"


def test_plain_http_on_tls_port_is_just_closed_without_go_reply(cluster, pki):
    with StandInAgent(cluster, tls=pki.server, go_plaintext_reply=False) as agent:
        with pytest.raises(requests.ConnectionError):
            requests.get(agent.address.replace("https://", "http://") + "/v1/jobs",
                         timeout=10)


def test_tls_speaks_1_2_and_nothing_older(tls_agent, pki):
    context = ssl.create_default_context(cafile=str(pki.ca_file))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", tls_agent.port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="server.global.nomad") as tls:
            assert tls.version() == "TLSv1.2"
    assert tls_agent._context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_mutual_tls_refuses_a_client_without_certificate(mtls_agent, pki):
    with pytest.raises((requests.exceptions.SSLError, requests.ConnectionError)):
        get(mtls_agent, "/v1/agent/self", verify=str(pki.ca_file))
    assert not mtls_agent.requests


def test_mutual_tls_accepts_the_clusters_client_certificate(mtls_agent, pki):
    response = get(mtls_agent, "/v1/agent/self", verify=str(pki.ca_file),
                   cert=(str(pki.cli_cert_file), str(pki.cli_key_file)))
    assert response.json()["config"]["TLSConfig"]["VerifyHTTPSClient"] is True
    subject = dict(pair[0] for pair in mtls_agent.requests[-1].client_cert["subject"])
    assert subject["commonName"] == "cli.global.nomad"


def test_mutual_tls_refuses_a_certificate_from_another_ca(mtls_agent, pki):
    with pytest.raises((requests.exceptions.SSLError, requests.ConnectionError)):
        get(mtls_agent, "/v1/agent/self", verify=str(pki.ca_file),
            cert=(str(pki.other_server_cert_file), str(pki.other_server_key_file)))


def test_expired_and_foreign_certificates_fail_verification(expired_agent, other_ca_agent,
                                                            pki):
    with pytest.raises(requests.exceptions.SSLError, match="expired"):
        get(expired_agent, "/v1/regions", verify=str(pki.ca_file))
    with pytest.raises(requests.exceptions.SSLError, match="certificate verify failed"):
        get(other_ca_agent, "/v1/regions", verify=str(pki.ca_file))


def test_client_leaving_mid_handshake_is_quiet(tls_agent, pki, capfd):
    with socket.create_connection(("127.0.0.1", tls_agent.port), timeout=10) as raw:
        raw.sendall(b"\x16\x03\x01\x02\x00\x01")
    with socket.create_connection(("127.0.0.1", tls_agent.port), timeout=10):
        pass
    assert get(tls_agent, "/v1/regions", verify=str(pki.ca_file)).status_code == 200
    assert "Traceback" not in capfd.readouterr().err


def test_ipv6_agent_address_is_bracketed(cluster, pki):
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    try:
        agent = StandInAgent(cluster, tls=pki.server, host="::1").start()
    except OSError:
        pytest.skip("cannot listen on ::1 here")
    with agent:
        assert agent.address == f"https://[::1]:{agent.port}"
        assert get(agent, "/v1/regions", verify=str(pki.ca_file)).json() == ["global"]


def test_unix_socket_agent(unix_agent):
    path = unix_agent.unix_socket
    assert unix_agent.address == f"unix://{path}"
    assert unix_agent.port is None
    conn = UnixHTTPConnection(path)
    conn.request("GET", "/v1/jobs?prefix=cache")
    response = conn.getresponse()
    assert response.status == 200
    assert [j["ID"] for j in json.loads(response.read())] == ["cache"]
    conn.close()


def test_unix_socket_is_removed_on_stop(cluster):
    directory = tempfile.mkdtemp(dir="/tmp")
    path = os.path.join(directory, "api.sock")
    try:
        with StandInAgent(cluster, unix_socket=path):
            assert os.path.exists(path)
        assert not os.path.exists(path)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_client_ca_without_tls_is_refused(cluster, pki):
    with pytest.raises(ValueError):
        StandInAgent(cluster, client_ca=pki.ca)


# --- LocalPKI ------------------------------------------------------------------------------

def test_local_pki_writes_the_whole_set(pki):
    for path in (pki.ca_file, pki.other_ca_file, pki.server_cert_file, pki.server_key_file,
                 pki.client_cert_file, pki.client_key_file, pki.cli_cert_file,
                 pki.cli_key_file, pki.expired_server_cert_file, pki.other_server_cert_file):
        assert path.is_file(), path
    assert pki.ca_file.name == "nomad-agent-ca.pem"
    assert pki.server_cert_file.name == "global-server-nomad.pem"


def test_local_pki_certificates_are_what_their_names_say(pki):
    assert set(pki.server.ip_addresses) == {"127.0.0.1", "::1"}
    assert "server.global.nomad" in pki.server.dns_names
    assert pki.client.common_name == "client.global.nomad"
    assert pki.expired_server.not_after < dt.datetime.now(dt.timezone.utc)
    assert pki.other_server.cert.issuer == pki.other_ca.cert.subject
    assert pki.other_server.cert.issuer != pki.ca.cert.subject


def test_local_pki_in_a_fresh_directory(tmp_path):
    made = LocalPKI(tmp_path / "new")
    assert made.ca_file.parent == tmp_path / "new"
