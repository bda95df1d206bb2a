"""How NomadClient shapes requests and reads answers: the URL, query parameters, headers,
bodies, timeouts and Nomad's metadata. The network is not the point here, so `responses`
stands in for it."""

from __future__ import annotations

import base64
import json
import warnings

import pytest
import responses
from hypothesis import given, settings as hypothesis_settings, strategies as st

from nomadtls import NomadClient, NomadWarning
from nomadtls.errors import ConfigError, InvalidResponse
from nomadtls.settings import SETTINGS, resolve

AGENT = "http://nomad.test:4646"


@pytest.fixture
def mocked():
    with responses.RequestsMock() as mock:
        yield mock


def client(**given) -> NomadClient:
    given.setdefault("address", AGENT)
    return NomadClient(environ={}, **given)


def sent(mock, number=0):
    return mock.calls[number].request


def test_get_returns_the_decoded_json(mocked):
    mocked.get(f"{AGENT}/v1/jobs", json=[{"ID": "web"}])

    assert client().get("/v1/jobs") == [{"ID": "web"}]


def test_region_and_namespace_are_sent_as_query_parameters(mocked):
    mocked.get(f"{AGENT}/v1/jobs", json=[])

    client(region="eu", namespace="web").get("/v1/jobs", {"prefix": "api"})

    assert sent(mocked).params == {"region": "eu", "namespace": "web", "prefix": "api"}


def test_a_parameter_given_for_one_call_beats_the_setting(mocked):
    mocked.get(f"{AGENT}/v1/jobs", json=[])

    client(namespace="web").get("/v1/jobs", {"namespace": "*"})

    assert sent(mocked).params == {"namespace": "*"}


def test_parameter_values_are_spelled_as_nomad_reads_them(mocked):
    mocked.get(f"{AGENT}/v1/allocations", json=[])

    client().get("/v1/allocations", {"resources": True, "task_states": False,
                                     "filter": None, "id": ["a", "b"]})

    assert sent(mocked).url.endswith("?resources=true&task_states=false&id=a&id=b")


def test_the_token_travels_as_x_nomad_token(mocked):
    mocked.get(f"{AGENT}/v1/jobs", json=[])

    client(token="8f2c6d1e-token").get("/v1/jobs")

    assert sent(mocked).headers["X-Nomad-Token"] == "8f2c6d1e-token"
    assert "Authorization" not in sent(mocked).headers


def test_no_token_header_without_a_token(mocked):
    mocked.get(f"{AGENT}/v1/jobs", json=[])

    client().get("/v1/jobs")

    assert "X-Nomad-Token" not in sent(mocked).headers


@pytest.mark.parametrize("given", [
    {"http_auth": "ops:s3cret:x"},
    {"address": "http://ops:s3cret:x@nomad.test:4646"},
    {"environ_auth": "ops:s3cret:x"},
])
def test_basic_auth_comes_from_http_auth_or_the_address(mocked, given):
    mocked.get(f"{AGENT}/v1/jobs", json=[])
    environ = {"NOMAD_HTTP_AUTH": given.pop("environ_auth")} if "environ_auth" in given else {}
    given.setdefault("address", AGENT)

    NomadClient(environ=environ, **given).get("/v1/jobs")

    header = sent(mocked).headers["Authorization"]
    assert base64.b64decode(header.split()[1]) == b"ops:s3cret:x"


def test_put_and_post_send_a_json_body(mocked):
    mocked.put(f"{AGENT}/v1/search", json={"Matches": {}})
    mocked.post(f"{AGENT}/v1/job/web/evaluate", json={"EvalID": "e1"})

    nomad = client()
    assert nomad.put("/v1/search", {"Prefix": "we", "Context": "all"}) == {"Matches": {}}
    assert nomad.post("/v1/job/web/evaluate", {"JobID": "web"}) == {"EvalID": "e1"}

    assert json.loads(sent(mocked, 0).body) == {"Prefix": "we", "Context": "all"}
    assert sent(mocked, 0).headers["Content-Type"] == "application/json"
    assert json.loads(sent(mocked, 1).body) == {"JobID": "web"}


def test_a_raw_body_is_sent_as_utf8_without_a_content_type(mocked):
    mocked.post(f"{AGENT}/v1/jobs/parse", json={"ID": "web"})

    client().request("POST", "/v1/jobs/parse", data='job "wéb" {}')

    assert sent(mocked).body == 'job "wéb" {}'.encode("utf-8")
    assert sent(mocked).headers["Content-Length"] == str(len(sent(mocked).body))
    assert "Content-Type" not in sent(mocked).headers


def test_a_call_adds_replaces_or_removes_headers(mocked):
    mocked.get(f"{AGENT}/v1/jobs", json=[])

    client(token="8f2c6d1e-token").request(
        "GET", "/v1/jobs", headers={"x-nomad-token": "0ther-token", "Accept": None,
                                    "X-Request-Id": "r-17"})

    headers = sent(mocked).headers
    assert headers["X-Nomad-Token"] == "0ther-token"
    assert "Accept" not in headers
    assert headers["X-Request-Id"] == "r-17"
    assert headers["User-Agent"].startswith("nomadtls/")


def test_a_call_with_headers_leaves_the_next_call_alone(mocked):
    mocked.get(f"{AGENT}/v1/jobs", json=[])

    nomad = client()
    nomad.request("GET", "/v1/jobs", headers={"Accept": None})
    nomad.get("/v1/jobs")

    assert sent(mocked, 1).headers["Accept"] == "application/json"


def test_a_body_that_json_cannot_carry_is_refused_before_sending():
    with pytest.raises(ValueError, match="JSON body"):
        client().put("/v1/var/app", {"Items": {"ratio": float("nan")}})


def test_a_path_is_quoted_as_requests_quotes_it(mocked):
    mocked.get(f"{AGENT}/v1/job/web%20api", json={"ID": "web api"})
    mocked.get(f"{AGENT}/v1/var/app%2Fconfig", json={})

    nomad = client(region="eu")
    nomad.get("/v1/job/web api")
    nomad.get("/v1/var/app%2Fconfig")

    assert sent(mocked, 0).url == f"{AGENT}/v1/job/web%20api?region=eu"
    assert sent(mocked, 1).url == f"{AGENT}/v1/var/app%2Fconfig?region=eu"


def test_a_query_in_the_path_is_kept_beside_the_parameters(mocked):
    mocked.get(f"{AGENT}/v1/jobs", json=[])

    client(namespace="web").get("/v1/jobs?prefix=api", {"meta": True})

    assert sent(mocked).url == f"{AGENT}/v1/jobs?prefix=api&namespace=web&meta=true"


def test_delete_returns_none_for_an_empty_answer(mocked):
    mocked.delete(f"{AGENT}/v1/var/app/config", body="")

    assert client().delete("/v1/var/app/config", {"cas": 3}) is None
    assert sent(mocked).params == {"cas": "3"}


def test_request_returns_the_metadata_nomad_sends_in_headers(mocked):
    mocked.get(f"{AGENT}/v1/nodes", json=[], headers={
        "X-Nomad-Index": "1234", "X-Nomad-KnownLeader": "true",
        "X-Nomad-LastContact": "7", "X-Nomad-NextToken": "node-9"})

    response = client().request("GET", "/v1/nodes")

    assert response.status == 200 and response.data == []
    assert (response.index, response.known_leader, response.last_contact) == (1234, True, 7)
    assert response.next_token == "node-9"
    assert repr(response) == "<Response GET /v1/nodes 200 index=1234>"


def test_endpoints_without_metadata_give_none(mocked):
    mocked.get(f"{AGENT}/v1/status/leader", json="10.0.0.5:4647")

    response = client().request("GET", "/v1/status/leader")

    assert response.data == "10.0.0.5:4647"
    assert (response.index, response.known_leader, response.next_token) == (None, None, None)


def test_paginate_follows_the_next_token_until_the_last_page(mocked):
    mocked.get(f"{AGENT}/v1/evaluations", json=[1, 2],
               headers={"X-Nomad-NextToken": "t2"},
               match=[responses.matchers.query_param_matcher({"per_page": "2"})])
    mocked.get(f"{AGENT}/v1/evaluations", json=[3, 4],
               headers={"X-Nomad-NextToken": "t3"},
               match=[responses.matchers.query_param_matcher(
                   {"per_page": "2", "next_token": "t2"})])
    mocked.get(f"{AGENT}/v1/evaluations", json=[5],
               match=[responses.matchers.query_param_matcher(
                   {"per_page": "2", "next_token": "t3"})])

    assert list(client().paginate("/v1/evaluations", per_page=2)) == [1, 2, 3, 4, 5]


def test_paginate_stops_when_the_agent_repeats_a_token(mocked):
    mocked.get(f"{AGENT}/v1/evaluations", json=[1], headers={"X-Nomad-NextToken": "same"})

    with pytest.raises(InvalidResponse, match="twice"):
        list(client().paginate("/v1/evaluations"))


def test_a_blocking_query_sends_index_and_wait_as_go_does_and_waits_longer(mocked):
    mocked.get(f"{AGENT}/v1/jobs", json=[], headers={"X-Nomad-Index": "43"})

    client(timeout=(3, 20)).get("/v1/jobs", index=42, wait=300)

    request = sent(mocked)
    assert request.params == {"index": "42", "wait": "300000ms"}
    connect, read = request.req_kwargs["timeout"]
    assert connect == 3 and read == pytest.approx(20 + 300 * 17 / 16)


def test_watch_yields_only_when_the_index_moves(mocked):
    for index in ("5", "5", "9"):
        mocked.get(f"{AGENT}/v1/jobs", json=[index], headers={"X-Nomad-Index": index})

    watched = client().watch("/v1/jobs", index=1, wait=1)
    first, second = next(watched), next(watched)

    assert (first.index, second.index) == (5, 9)
    assert [call.request.params["index"] for call in mocked.calls] == ["1", "5", "5"]


def test_every_call_has_a_connect_and_a_read_timeout(mocked):
    mocked.get(f"{AGENT}/v1/jobs", json=[])

    client().get("/v1/jobs")
    client(timeout=4).get("/v1/jobs")

    assert sent(mocked, 0).req_kwargs["timeout"] == (10.0, 60.0)
    assert sent(mocked, 1).req_kwargs["timeout"] == (4.0, 4.0)


@pytest.mark.parametrize("timeout", [0, -1, "soon", (1, 2, 3)])
def test_a_timeout_that_means_nothing_is_a_config_error(timeout):
    with pytest.raises(ConfigError, match="timeout"):
        client(timeout=timeout)


def test_settings_come_from_the_environment_when_the_client_is_made(monkeypatch, mocked):
    mocked.get("http://late.test:4646/v1/jobs", json=[])
    monkeypatch.setenv("NOMAD_ADDR", "http://late.test:4646")

    nomad = NomadClient()

    assert nomad.get("/v1/jobs") == []
    assert nomad.settings.source("address") == "NOMAD_ADDR"


def test_from_settings_uses_what_the_cli_resolved(mocked):
    mocked.get(f"{AGENT}/v1/jobs", json=[])
    settings = resolve({"NOMAD_REGION": "eu"}, origin="flag", address=AGENT)

    nomad = NomadClient.from_settings(settings, timeout=5)

    assert nomad.settings is settings
    nomad.get("/v1/jobs")
    assert sent(mocked).params == {"region": "eu"}


def test_the_repr_shows_address_and_region_but_no_secret():
    nomad = client(address="https://ops:hunter2@nomad.test:4646", region="eu",
                   token="c0ffee-secret-token")

    assert repr(nomad) == "<NomadClient address='https://nomad.test:4646' region='eu'>"
    assert "hunter2" not in repr(nomad.settings)
    assert "c0ffee" not in repr(nomad.settings)


def test_skipping_verification_warns_once_per_client():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client(address="https://nomad.test:4646", skip_verify=True)

    (warning,) = caught
    assert warning.category is NomadWarning
    assert "verification is off" in str(warning.message)


def test_the_resolvers_warnings_reach_the_caller_as_nomad_warnings():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        NomadClient(environ={"NOMAD_SKIP_VERIFY": "maybe", "NOMAD_ADDR": AGENT})

    assert [w.category for w in caught] == [NomadWarning]
    assert "NOMAD_SKIP_VERIFY" in str(caught[0].message)


def test_a_url_instead_of_a_path_is_refused():
    with pytest.raises(ValueError, match="API path"):
        client().get("https://elsewhere.test/v1/jobs")


def test_the_client_closes_as_a_context_manager(mocked):
    mocked.get(f"{AGENT}/v1/jobs", json=[])

    with client() as nomad:
        assert nomad.get("/v1/jobs") == []


@hypothesis_settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from([s.env for s in SETTINGS]),
                       st.text(st.characters(exclude_characters="\x00"), max_size=30)))
def test_any_environment_makes_a_client_or_a_config_error(environ):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NomadWarning)
        try:
            client = NomadClient(environ=environ)
        except ConfigError as error:
            assert error.message and "\n" not in error.message
            return
    assert repr(client).startswith("<NomadClient address=")
    client.close()
