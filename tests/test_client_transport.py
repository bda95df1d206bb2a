"""NomadClient over real sockets: unix sockets, keep-alive, redirects that must not carry
credentials away, retries of reads under faults, timeouts, and one client shared by many
threads."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from nomadtls import NomadClient
from nomadtls._transport import proxies_for
from nomadtls.errors import APIError, ConnectError, ReadTimeout, TransportError
from nomadtls.testing import StandInAgent


def quick_client(address, **given) -> NomadClient:
    """A client whose pauses between tries are short, so that fault tests stay fast."""
    given.setdefault("backoff", 0.01)
    return NomadClient(address, environ={}, **given)


def connections_of(client: NomadClient) -> int:
    """How many connections the client has opened to its agent so far."""
    adapter = client._transport.adapter_for(client.settings.address.url + "/")
    pool = getattr(adapter, "_pool", None)
    if pool is None:
        (pool,) = adapter.poolmanager.pools._container.values()
    return pool.num_connections


def test_a_unix_socket_agent_answers(unix_agent):
    with quick_client(unix_agent.address) as client:
        assert client.get("/v1/jobs") == client.get("/v1/jobs")
        assert unix_agent.requests[-1].path == "/v1/jobs"


def test_a_unix_socket_connection_is_kept_alive(unix_agent):
    with quick_client(unix_agent.address) as client:
        for _ in range(20):
            client.get("/v1/agent/health")

        assert connections_of(client) == 1


def test_a_tcp_connection_is_kept_alive(tls_agent, pki):
    with quick_client(tls_agent.address, ca_cert=pki.ca_file) as client:
        for _ in range(20):
            client.get("/v1/agent/health")

        assert connections_of(client) == 1


def test_region_namespace_and_token_reach_a_unix_agent(unix_agent):
    with quick_client(unix_agent.address, region="eu", namespace="*",
                      token="ab12-secret") as client:
        client.get("/v1/jobs")

    request = unix_agent.requests[-1]
    assert request.query == {"region": "eu", "namespace": "*"}
    assert request.headers["X-Nomad-Token"] == "ab12-secret"


# ------------------------------------------------------------------ redirects

def redirect_to(location: str):
    return lambda request: (307, {"Location": location}, "")


def test_a_redirect_to_another_host_carries_neither_token_nor_basic_auth(cluster):
    with StandInAgent(cluster) as agent, StandInAgent(cluster, host="127.0.0.2") as other:
        agent.add_route("GET", "/v1/jobs", redirect_to(f"{other.address}/v1/jobs"))
        address = agent.address.replace("http://", "http://ops:hunter2@")

        with quick_client(address, token="7c0ffee-secret") as client:
            assert client.get("/v1/jobs")

        (followed,) = other.requests
        assert followed.path == "/v1/jobs"
        assert "X-Nomad-Token" not in followed.headers
        assert "Authorization" not in followed.headers
        assert agent.requests[-1].headers["X-Nomad-Token"] == "7c0ffee-secret"


def test_a_redirect_to_another_port_of_the_same_host_is_another_host(cluster):
    with StandInAgent(cluster) as agent, StandInAgent(cluster) as other:
        agent.add_route("GET", "/v1/jobs", redirect_to(f"{other.address}/v1/jobs"))

        with quick_client(agent.address, token="7c0ffee-secret") as client:
            client.get("/v1/jobs")

        assert "X-Nomad-Token" not in other.requests[-1].headers


@pytest.mark.parametrize("agent_fixture", ["plain_agent", "unix_agent"])
def test_a_redirect_within_the_agent_keeps_the_token(request, agent_fixture):
    agent = request.getfixturevalue(agent_fixture)
    agent.add_route("GET", "/v1/old-jobs", redirect_to("/v1/jobs"))

    with quick_client(agent.address, token="7c0ffee-secret",
                      http_auth="ops:hunter2") as client:
        assert client.get("/v1/old-jobs")

    followed = agent.requests[-1]
    assert followed.path == "/v1/jobs"
    assert followed.headers["X-Nomad-Token"] == "7c0ffee-secret"
    assert followed.headers["Authorization"].startswith("Basic ")


def test_credentials_do_not_return_when_a_redirect_leads_back_to_the_agent(cluster):
    with StandInAgent(cluster) as agent, StandInAgent(cluster, host="127.0.0.2") as other:
        agent.add_route("GET", "/v1/jobs", redirect_to(f"{other.address}/v1/bounce"))
        other.add_route("GET", "/v1/bounce", redirect_to(f"{agent.address}/v1/nodes"))

        with quick_client(agent.address, token="7c0ffee-secret") as client:
            assert client.get("/v1/jobs") == client.get("/v1/nodes")

        came_back = agent.requests[1]
        assert came_back.path == "/v1/nodes"
        assert "X-Nomad-Token" not in came_back.headers
        assert agent.requests[-1].headers["X-Nomad-Token"] == "7c0ffee-secret"


def test_a_client_redirected_through_many_hosts_still_reaches_its_agent(cluster):
    # More hosts than the client keeps pools for, each reached through its own pool: the
    # agent's requests still go to the agent.
    with contextlib.ExitStack() as stack:
        agent = stack.enter_context(StandInAgent(cluster))
        hops = [stack.enter_context(StandInAgent(cluster, host=f"127.0.0.{n}"))
                for n in range(2, 7)]
        agent.add_route("GET", "/v1/job/far-away", redirect_to(f"{hops[0].address}/v1/hop"))
        for here, there in zip(hops, hops[1:]):
            here.add_route("GET", "/v1/hop", redirect_to(f"{there.address}/v1/hop"))
        hops[-1].add_route("GET", "/v1/hop", lambda request: (200, {}, {"ID": "far-away"}))

        with quick_client(agent.address, retries=0) as client:
            assert client.get("/v1/job/far-away") == {"ID": "far-away"}
            assert client.get("/v1/jobs")

        assert [len(hop.requests) for hop in hops] == [1] * len(hops)
        assert [request.path for request in agent.requests] == ["/v1/job/far-away",
                                                                "/v1/jobs"]


@pytest.mark.parametrize("status", [301, 302, 303])
def test_a_see_other_redirect_turns_a_write_into_a_read_without_its_body(plain_agent,
                                                                         status):
    plain_agent.add_route("PUT", "/v1/search",
                          lambda request: (status, {"Location": "/v1/jobs"}, ""))

    with quick_client(plain_agent.address, token="7c0ffee-secret") as client:
        assert client.put("/v1/search", {"Prefix": "web", "Context": "jobs"})

    put, followed = plain_agent.requests
    assert (put.method, followed.method, followed.path) == ("PUT", "GET", "/v1/jobs")
    assert followed.body == b""
    assert "Content-Type" not in followed.headers
    assert followed.headers["X-Nomad-Token"] == "7c0ffee-secret"


@pytest.mark.parametrize("status", [307, 308])
def test_a_temporary_or_permanent_redirect_repeats_the_method_and_body(plain_agent, status):
    plain_agent.add_route("PUT", "/v1/old-search",
                          lambda request: (status, {"Location": "/v1/search"}, ""))

    with quick_client(plain_agent.address) as client:
        answer = client.put("/v1/old-search", {"Prefix": "web", "Context": "jobs"})

    followed = plain_agent.requests[-1]
    assert (followed.method, followed.path) == ("PUT", "/v1/search")
    assert followed.json() == {"Prefix": "web", "Context": "jobs"}
    assert "jobs" in answer["Matches"]


def test_a_redirect_loop_stops_after_ten_redirects(plain_agent):
    plain_agent.add_route("GET", "/v1/loop", redirect_to("/v1/loop"))

    with quick_client(plain_agent.address) as client, pytest.raises(TransportError) as caught:
        client.get("/v1/loop")

    assert "stopped after 10 redirects" in caught.value.message
    assert len(plain_agent.requests) == 11  # the first request and ten redirects


# ------------------------------------------------------------------ faults

def test_a_read_survives_dropped_connections(plain_agent):
    plain_agent.drop_next(2)

    with quick_client(plain_agent.address) as client:
        assert client.get("/v1/jobs")

    assert [r.path for r in plain_agent.requests] == ["/v1/jobs"] * 3


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_a_read_survives_a_few_unavailable_answers(plain_agent, status):
    plain_agent.fail_next(3, status=status)

    with quick_client(plain_agent.address) as client:
        assert client.get("/v1/jobs")

    assert len(plain_agent.requests) == 4


def test_a_read_over_tls_survives_drops(tls_agent, pki):
    tls_agent.drop_next(2)

    with quick_client(tls_agent.address, ca_cert=pki.ca_file) as client:
        assert client.get("/v1/jobs")


def test_retries_are_bounded_and_the_last_error_is_reported(plain_agent):
    plain_agent.fail_next(2, status=503, body="No cluster leader")
    plain_agent.fail_next(10, status=502, body="bad gateway, the last word")

    with quick_client(plain_agent.address, retries=3) as client:
        with pytest.raises(APIError) as caught:
            client.get("/v1/jobs")

    assert caught.value.status == 502
    assert "the last word" in caught.value.message
    assert "tried 4 times" in caught.value.hint
    assert len(plain_agent.requests) == 4


def test_a_retry_after_within_the_cap_is_honoured(plain_agent):
    answers = iter([(429, {"Retry-After": "0"}, "slow down"), (200, {}, [])])
    plain_agent.add_route("GET", "/v1/limited", lambda request: next(answers))

    with quick_client(plain_agent.address, backoff=30) as client:
        # A 30 s backoff would stall the test; the agent's Retry-After: 0 wins.
        assert client.get("/v1/limited") == []


def test_a_retry_after_beyond_the_cap_is_reported_at_once(plain_agent):
    plain_agent.add_route("GET", "/v1/limited",
                          lambda request: (429, {"Retry-After": "3600"}, "come back later"))

    with quick_client(plain_agent.address) as client, pytest.raises(APIError) as caught:
        client.get("/v1/limited")

    assert caught.value.status == 429
    assert len(plain_agent.requests) == 1


def test_a_write_is_never_sent_twice_after_an_answer(plain_agent):
    plain_agent.fail_next(1, status=503)

    with quick_client(plain_agent.address) as client, pytest.raises(APIError):
        client.put("/v1/search", {"Prefix": "web", "Context": "jobs"})

    assert [r.method for r in plain_agent.requests] == ["PUT"]


def test_a_write_is_not_sent_again_after_a_dropped_connection(plain_agent):
    plain_agent.drop_next(1)

    with quick_client(plain_agent.address) as client, pytest.raises(ConnectError):
        client.put("/v1/search", {"Prefix": "web", "Context": "jobs"})

    assert len(plain_agent.requests) == 1


def test_a_refused_connection_is_reported_at_once_until_the_agent_has_answered():
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # a port nothing listens on once closed

    with quick_client(f"http://127.0.0.1:{port}", retries=3) as client:
        with pytest.raises(ConnectError) as caught:
            client.get("/v1/jobs")

    assert caught.value.message.endswith("connection refused")  # no "(tried 4 times)"


def test_once_the_agent_has_answered_a_refused_write_is_tried_again(cluster):
    agent = StandInAgent(cluster).start()
    with quick_client(agent.address, retries=2) as client:
        client.get("/v1/jobs")
        agent.stop()  # as when it restarts: now nothing listens on its port

        with pytest.raises(ConnectError) as caught:
            client.post("/v1/jobs", {"Job": {}})

    assert "connection refused (tried 3 times)" in caught.value.message


def test_a_silent_agent_meets_the_read_timeout(plain_agent):
    plain_agent.stall_next(1, seconds=5)

    with quick_client(plain_agent.address, timeout=(2, 0.3)) as client:
        with pytest.raises(ReadTimeout) as caught:
            client.get("/v1/jobs")

    assert "0.3 s" in caught.value.message
    assert len(plain_agent.requests) == 1  # a timeout is not retried


def test_a_blocking_query_waits_longer_than_the_read_timeout(cluster):
    with StandInAgent(cluster) as agent:
        with quick_client(agent.address, timeout=(2, 1)) as client:
            first = client.request("GET", "/v1/jobs")
            # The agent holds the answer for the whole wait, longer than the read timeout.
            again = client.request("GET", "/v1/jobs", index=first.index, wait=1.5)

    assert again.index == first.index
    assert agent.requests[-1].query["wait"] == "1500ms"


def test_sixteen_threads_share_one_client(cluster, pki):
    with StandInAgent(cluster, tls=pki.server) as agent:
        expected = {
            "/v1/jobs": None, "/v1/nodes": None, "/v1/agent/health": None,
            "/v1/status/leader": None,
        }
        with quick_client(agent.address, ca_cert=pki.ca_file) as client:
            for path in expected:
                expected[path] = client.get(path)
            paths = list(expected) * 32  # 128 requests per thread, 2,048 in all

            def worker(offset: int) -> int:
                wrong = 0
                for path in paths[offset:] + paths[:offset]:
                    wrong += client.get(path) != expected[path]
                return wrong

            with ThreadPoolExecutor(16) as pool:
                results = list(pool.map(worker, range(16)))
            opened = connections_of(client)

        assert results == [0] * 16
        assert len(agent.requests) == 16 * len(paths) + len(expected)
        assert opened <= 32  # connections are reused, not one per request


def test_the_diagnosis_is_loaded_only_once_something_fails(cluster):
    # Translating failures needs the diagnosis module; a client whose requests succeed
    # never pays for importing it.
    script = textwrap.dedent("""
        import sys
        from nomadtls import NomadClient
        from nomadtls.testing import Cluster, StandInAgent

        with StandInAgent(Cluster.sample()) as agent:
            with NomadClient(agent.address, environ={}) as client:
                client.get("/v1/jobs")
                client.put("/v1/search", {"Prefix": "web", "Context": "jobs"})
                print("nomadtls._diagnose" in sys.modules)
                try:
                    client.get("/v1/job/no-such-job")
                except Exception:
                    print("nomadtls._diagnose" in sys.modules)
    """)

    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60, env={"PATH": os.environ.get("PATH", "")})

    assert ran.stdout.split() == ["False", "True"], ran.stderr


def test_a_closed_client_reconnects_when_used_again(unix_agent):
    client = quick_client(unix_agent.address)
    client.get("/v1/jobs")

    client.close()

    assert client.get("/v1/jobs")
    assert len(unix_agent.requests) == 2


# ------------------------------------------------------------------ proxies and logs

def answer_as_proxy(listener: socket.socket, seen: list[bytes]) -> None:
    """Play a forward proxy for one request: note its request line, answer `[]`."""
    conn, _ = listener.accept()
    with conn:
        request = b""
        while b"\r\n\r\n" not in request:
            request += conn.recv(4096)
        seen.append(request.split(b"\r\n", 1)[0])
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 2\r\nConnection: close\r\n\r\n[]")


def test_an_http_proxy_from_the_environment_carries_requests_to_a_remote_agent():
    seen: list[bytes] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        thread = threading.Thread(target=answer_as_proxy, args=(listener, seen), daemon=True)
        thread.start()
        environ = {"NOMAD_ADDR": "http://nomad.example.test:4646",
                   "http_proxy": f"http://127.0.0.1:{listener.getsockname()[1]}"}

        with NomadClient(environ=environ) as client:
            assert client.get("/v1/jobs") == []
        thread.join(timeout=5)

    assert seen == [b"GET http://nomad.example.test:4646/v1/jobs HTTP/1.1"]


def test_a_redirect_to_a_remote_host_goes_through_the_proxy_for_that_host(plain_agent):
    seen: list[bytes] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        thread = threading.Thread(target=answer_as_proxy, args=(listener, seen), daemon=True)
        thread.start()
        plain_agent.add_route("GET", "/v1/jobs",
                              redirect_to("http://nomad-two.example.test:4646/v1/jobs"))
        environ = {"http_proxy": f"http://127.0.0.1:{listener.getsockname()[1]}"}

        # The agent itself is on a loopback address, so it is reached directly.
        with NomadClient(plain_agent.address, environ=environ) as client:
            assert client.get("/v1/jobs") == []
        thread.join(timeout=5)

    assert seen == [b"GET http://nomad-two.example.test:4646/v1/jobs HTTP/1.1"]


@pytest.mark.parametrize("url, no_proxy, proxied", [
    ("https://nomad.example.test:4646", "", True),
    ("https://nomad.example.test:4646", "example.test", False),
    ("https://nomad.example.test:4646", ".example.test,other", False),
    ("https://nomad.example.test:4646", "*", False),
    ("https://10.1.2.3:4646", "10.0.0.0/8", False),
    ("https://10.1.2.3:4646", "192.168.0.0/16", True),
    ("https://127.0.0.1:4646", "", False),
    ("https://[::1]:4646", "", False),
    ("https://localhost:4646", "", False),
])
def test_which_agents_go_through_the_proxy(url, no_proxy, proxied):
    environ = {"HTTPS_PROXY": "http://proxy.test:3128", "NO_PROXY": no_proxy}

    assert bool(proxies_for(url, environ)) is proxied


def test_each_request_logs_one_debug_line_without_secrets(plain_agent, caplog):
    caplog.set_level(logging.DEBUG)

    with quick_client(plain_agent.address, token="0ff1ce-secret", region="eu",
                      http_auth="ops:hunter2") as client:
        client.get("/v1/jobs")

    ours = [r.getMessage() for r in caplog.records if r.name.startswith("nomadtls._")
            or r.name == "nomadtls.client"]
    assert ours == [f"GET {plain_agent.address}/v1/jobs -> 200"]
    for record in caplog.records:
        assert "0ff1ce-secret" not in record.getMessage()
        assert "hunter2" not in record.getMessage()
    assert logging.getLogger("nomadtls").handlers == []
