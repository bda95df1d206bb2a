"""The installed `nomadtls` command, run as a user runs it, against a stand-in agent over
TLS: by IP address with a server name, by name, and with a client certificate."""

from __future__ import annotations

import base64
import os
import subprocess
import sys


def test_the_console_script_is_installed(nomadtls_script):
    assert nomadtls_script is not None, "pip install the project to get the nomadtls command"


def test_by_ip_with_the_server_name_lists_the_jobs(agent_by_ip, pki, run_nomadtls):
    done = run_nomadtls("status", NOMAD_ADDR=agent_by_ip.address, NOMAD_CACERT=str(pki.ca_file),
                        NOMAD_TLS_SERVER_NAME="server.global.nomad")

    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines()[0].split() == ["ID", "Type", "Priority", "Status",
                                                   "Submit", "Date"]
    assert "cache " in done.stdout


def test_by_ip_without_the_server_name_says_which_name_to_set(agent_by_ip, pki, run_nomadtls):
    done = run_nomadtls("status", NOMAD_ADDR=agent_by_ip.address, NOMAD_CACERT=str(pki.ca_file))

    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("Error: ")
    assert "NOMAD_TLS_SERVER_NAME=server.global.nomad" in done.stderr
    assert len(done.stderr.splitlines()) <= 3 and "Traceback" not in done.stderr


def test_the_server_name_flag_beats_a_wrong_variable(agent_by_ip, pki, run_nomadtls):
    done = run_nomadtls("status", "-tls-server-name=server.global.nomad",
                        NOMAD_ADDR=agent_by_ip.address, NOMAD_CACERT=str(pki.ca_file),
                        NOMAD_TLS_SERVER_NAME="wrong.example")

    assert done.returncode == 0, done.stderr


def test_by_name_shows_a_detail_view(tls_agent, pki, run_nomadtls):
    address = tls_agent.address.replace("127.0.0.1", "localhost")

    done = run_nomadtls("status", "cache", NOMAD_ADDR=address, NOMAD_CACERT=str(pki.ca_file))

    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("ID            = cache\n")
    assert "\nAllocations\n" in done.stdout


def test_with_a_client_certificate_from_the_variables(mtls_agent, pki, run_nomadtls):
    done = run_nomadtls("status", NOMAD_ADDR=mtls_agent.address, NOMAD_CACERT=str(pki.ca_file),
                        NOMAD_CLIENT_CERT=str(pki.cli_cert_file),
                        NOMAD_CLIENT_KEY=str(pki.cli_key_file))

    assert (done.returncode, done.stderr) == (0, "")
    assert "transcode" in done.stdout
    assert mtls_agent.requests[-1].client_cert is not None


def test_with_a_client_certificate_from_the_flags(mtls_agent, pki, run_nomadtls):
    done = run_nomadtls("status", "-json", f"-address={mtls_agent.address}",
                        "--ca-cert", str(pki.ca_file), "-client-cert", str(pki.cli_cert_file),
                        f"--client-key={pki.cli_key_file}")

    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("[\n    {")


def test_without_the_client_certificate_an_mtls_agent_points_at_the_variables(mtls_agent,
                                                                             pki, run_nomadtls):
    done = run_nomadtls("status", NOMAD_ADDR=mtls_agent.address, NOMAD_CACERT=str(pki.ca_file))

    assert done.returncode == 1
    assert "NOMAD_CLIENT_CERT" in done.stderr and "Traceback" not in done.stderr


def test_skipping_verification_warns_once_on_stderr(tls_agent, run_nomadtls):
    done = run_nomadtls("status", "-tls-skip-verify", NOMAD_ADDR=tls_agent.address)

    assert done.returncode == 0
    warnings = [line for line in done.stderr.splitlines() if line.startswith("Warning: ")]
    assert len(warnings) == 1 and done.stderr.count("\n") == 1


def test_an_unparseable_skip_verify_warns_and_keeps_verifying(tls_agent, run_nomadtls):
    done = run_nomadtls("status", NOMAD_ADDR=tls_agent.address, NOMAD_SKIP_VERIFY="yes please")

    assert done.returncode == 1  # the CA is not given, so verification fails
    assert done.stderr.splitlines()[0].startswith("Warning: NOMAD_SKIP_VERIFY=")


def test_exit_codes_follow_nomad_usage_errors_are_2(run_nomadtls):
    assert run_nomadtls("status", "-no-such-flag").returncode == 2
    assert run_nomadtls("keygen", "-bytes=20").returncode == 2


def test_keygen_prints_a_16_byte_key(run_nomadtls):
    done = run_nomadtls("keygen")

    assert done.returncode == 0
    assert len(base64.b64decode(done.stdout.strip(), validate=True)) == 16


def test_no_arguments_prints_the_help_as_a_usage_error(run_nomadtls):
    done = run_nomadtls()

    assert done.returncode == 2
    assert done.stderr.startswith("Usage: nomadtls [OPTIONS] COMMAND")


def in_fresh_interpreter(code: str, **env: str) -> list[str]:
    """Run `code` in a new interpreter; the words of the last line it wrote to stderr."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **env})
    return done.stderr.splitlines()[-1].split()


def test_a_run_makes_no_garbage_collection_pass_and_leaves_its_objects_frozen(tls_agent, pki):
    code = ("import gc, sys\n"
            "from nomadtls_cli.main import run\n"
            "passes = []\n"
            "gc.callbacks.append(lambda phase, info: passes.append(phase))\n"
            "try:\n"
            "    run(['status'])\n"
            "except SystemExit as exit:\n"
            "    code = exit.code\n"
            "print(code, len(passes), gc.get_freeze_count() > 0, gc.isenabled(),\n"
            "      file=sys.stderr)\n")

    words = in_fresh_interpreter(code, NOMAD_ADDR=tls_agent.address,
                                 NOMAD_CACERT=str(pki.ca_file))

    assert words == ["0", "0", "True", "True"]  # the collector is back on for the caller


def test_the_library_leaves_the_garbage_collector_alone():
    code = ("import gc, sys\n"
            "import nomadtls, nomadtls.client, nomadtls.settings, nomadtls_cli.app\n"
            "print(gc.isenabled(), gc.get_freeze_count(), file=sys.stderr)\n")

    assert in_fresh_interpreter(code) == ["True", "0"]
