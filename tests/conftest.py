"""Fixtures shared by the whole suite: a clean environment for every test, the `nomadtls`
command, one test PKI and sample cluster per session, and stand-in agents in every mode Nomad
serves."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from nomadtls.testing import Cluster, LocalPKI, StandInAgent


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """Remove every NOMAD_* variable, NO_COLOR and COLUMNS: the developer's shell never leaks in."""
    for name in list(os.environ):
        if name.startswith("NOMAD_") or name in ("NO_COLOR", "COLUMNS"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def nomadtls_script() -> str | None:
    """The `nomadtls` console script pip installed beside this interpreter, else None."""
    return shutil.which("nomadtls", path=os.path.dirname(sys.executable))


@pytest.fixture(scope="session")
def run_nomadtls(nomadtls_script):
    """Run the `nomadtls` command as a user runs it, with `env` added to the environment:
    the installed script, else the module behind it, so that no test is skipped without it.
    """
    command = ([nomadtls_script] if nomadtls_script
               else [sys.executable, "-m", "nomadtls_cli.main"])

    def run(*args: str, cwd=None, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([*command, *args], capture_output=True, text=True, timeout=60,
                              cwd=cwd, env={**os.environ, **env})

    return run


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> LocalPKI:
    return LocalPKI(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    """The sample cluster, shared: a test that changes it must use its own copy."""
    return Cluster.sample()


def _serving(cluster, **options):
    with StandInAgent(cluster, **options) as agent:
        yield agent


@pytest.fixture
def plain_agent(cluster):
    yield from _serving(cluster)


@pytest.fixture
def tls_agent(cluster, pki):
    yield from _serving(cluster, tls=pki.server)


@pytest.fixture
def mtls_agent(cluster, pki):
    yield from _serving(cluster, tls=pki.server, client_ca=pki.ca)


@pytest.fixture
def agent_by_ip(cluster, pki):
    """A TLS agent at 127.0.0.2, an address its certificate does not hold (it holds
    server.global.nomad, localhost, 127.0.0.1 and ::1), as a Nomad server reached by IP."""
    yield from _serving(cluster, tls=pki.server, host="127.0.0.2")


@pytest.fixture
def unix_agent(cluster):
    # AF_UNIX paths are limited to about 107 bytes, too few for pytest's tmp_path.
    directory = tempfile.mkdtemp(prefix="nomadtls-", dir="/tmp")
    try:
        yield from _serving(cluster, unix_socket=os.path.join(directory, "api.sock"))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def expired_agent(cluster, pki):
    yield from _serving(cluster, tls=pki.expired_server)


@pytest.fixture
def other_ca_agent(cluster, pki):
    yield from _serving(cluster, tls=pki.other_server)
