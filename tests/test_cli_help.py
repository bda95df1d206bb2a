"""The help pages: on the tool and on every command, with -h and --help, ending in an
"Environment Variables" section generated from the settings registry, readable at 80
columns; and cheap to print, without loading the network or TLS stack."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from nomadtls.settings import SETTINGS
from nomadtls_cli.main import app

COMMANDS = [[], ["status"], ["keygen"], ["tls"], ["tls", "ca", "create"],
            ["tls", "cert", "create"]]
HEAVY = ("requests", "urllib3", "cryptography", "rich", "pydantic", "nomadtls.client")


def help_of(words: list[str], flag: str = "-h") -> str:
    """The help page as CliRunner prints it: 80 columns wide, as Click's runner forces."""
    result = CliRunner().invoke(app, [*words, flag])
    assert result.exit_code == 0, result.output
    return result.stdout


def help_in_terminal(words: list[str], columns: int) -> str:
    """The help page the installed tool prints in a terminal `columns` wide."""
    done = subprocess.run([sys.executable, "-m", "nomadtls_cli.main", *words, "-h"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": str(columns)})
    assert done.returncode == 0, done.stderr
    return done.stdout


def environment_section(text: str) -> str:
    return text.split("\nEnvironment Variables:\n", 1)[1]


def environment_entries(text: str) -> dict[str, str]:
    """The section's entries: each term (indented 2) and its text (indented 4), unwrapped."""
    entries: dict[str, str] = {}
    term = None
    for line in environment_section(text).splitlines():
        if line.startswith("    ") and term is not None:
            entries[term] = f"{entries[term]} {line.strip()}".strip()
        elif line.startswith("  "):
            term = line.strip()
            entries[term] = ""
    return entries


@pytest.mark.parametrize("words", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_every_command_answers_both_help_flags(words, flag):
    text = help_of(words, flag)

    assert text.startswith(f"Usage: nomadtls {' '.join(words)}".rstrip() + " ")
    assert "\nEnvironment Variables:\n" in text


def test_nomad_spelling_of_help_works_too():
    assert help_of(["status"], "-help") == help_of(["status"], "-h")


@pytest.mark.parametrize("words", COMMANDS, ids=" ".join)
def test_help_lists_every_registry_variable_with_its_flag_and_meaning(words):
    entries = environment_entries(help_of(words))

    expected = {(f"{s.env} ({s.flag})" if s.flag else s.env): s for s in SETTINGS}
    assert set(expected) <= set(entries)
    for term, setting in expected.items():
        assert entries[term].startswith(setting.help)
        assert f"Default: {setting.default}." in entries[term]
    assert len(SETTINGS) == 13


def test_help_follows_the_registry_when_a_setting_changes(monkeypatch):
    import nomadtls_cli.help as help_module
    from nomadtls.settings import Setting

    extra = Setting("shade", "NOMAD_SHADE", "-shade", "text", "A made-up setting.", "grey")
    monkeypatch.setattr(help_module, "SETTINGS", (*SETTINGS, extra))

    entries = environment_entries(help_of(["keygen"]))

    assert entries["NOMAD_SHADE (-shade)"] == "A made-up setting. Default: grey."


def test_status_help_reads_in_the_order_usage_description_options_variables():
    text = help_of(["status"])

    markers = ["Usage: nomadtls status [OPTIONS] [PREFIX]", "Show the jobs", "Options:",
               "Connection Options:", "Environment Variables:"]
    positions = [text.index(marker) for marker in markers]
    assert positions == sorted(positions)


def test_connection_options_are_listed_in_nomad_spelling_and_name_their_variable():
    text = help_of(["status"])
    options = text.split("Connection Options:\n", 1)[1].split("\n\n", 1)[0]
    rows = dict(re.findall(r"^  (-\S+) +(.*(?:\n {4,}.*)*)", options, flags=re.M))
    rows = {name.split("=")[0]: " ".join(text.split()) for name, text in rows.items()}

    flags = [setting.flag for setting in SETTINGS if setting.flag]
    assert list(rows) == flags
    for setting in SETTINGS:
        if setting.flag:
            assert rows[setting.flag].endswith(f"overrides {setting.env}.")
    assert "-address=ADDRESS" in options
    assert "-insecure" not in text  # the hidden alias


def test_the_tool_lists_its_commands():
    text = help_of([])

    commands = text.split("Commands:\n", 1)[1].split("\n\n", 1)[0]
    assert [line.split()[0] for line in commands.splitlines()] == ["status", "keygen", "tls"]


@pytest.mark.parametrize("words", COMMANDS, ids=" ".join)
def test_no_help_line_is_wider_than_80_columns(words):
    text = help_of(words)

    assert max(len(line) for line in text.splitlines()) <= 80


@pytest.mark.parametrize("columns, widest", [(200, 80), (100, 80), (60, 60)])
def test_help_fits_the_terminal_up_to_80_columns(columns, widest):
    text = help_in_terminal(["status"], columns)

    assert max(len(line) for line in text.splitlines()) <= widest
    assert "\nEnvironment Variables:\n" in text


def test_help_never_mentions_rich_markup_or_boxes():
    text = help_of(["status"])

    assert not re.search(r"[╭│╰─]", text)
    assert "\x1b[" not in text


def loaded_modules(*argv: str) -> list[str]:
    """Run the CLI with `argv` in a fresh interpreter; the modules it loaded."""
    script = ("import sys\n"
              "from nomadtls_cli.main import run\n"
              "try:\n"
              f"    run({list(argv)!r})\n"
              "except SystemExit:\n"
              "    pass\n"
              "sys.__stderr__.write('\\n' + __import__('json').dumps(sorted(sys.modules)))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    return json.loads(done.stderr.rsplit("\n", 1)[1])


@pytest.mark.parametrize("argv", [["status", "-h"], ["--help"], ["keygen", "-h"],
                                  ["tls", "-h"], ["status", "-no-such-flag"]], ids=" ".join)
def test_help_and_usage_errors_load_neither_the_network_nor_tls_nor_rich(argv):
    modules = loaded_modules(*argv)

    assert "nomadtls_cli.main" in modules
    assert [m for m in modules if m.split(".")[0] in HEAVY or m in HEAVY] == []



@pytest.mark.parametrize("argv, loaded", [
    (["status", "-h"], "nomadtls_cli.status"), (["keygen", "-h"], "nomadtls_cli.keygen"),
    (["tls", "ca", "-h"], "nomadtls_cli.tls")], ids=" ".join)
def test_a_command_loads_only_its_own_module(argv, loaded):
    modules = loaded_modules(*argv)

    commands = {"nomadtls_cli.status", "nomadtls_cli.keygen", "nomadtls_cli.tls"}
    assert commands & set(modules) == {loaded}


def test_the_tool_help_loads_every_command_to_list_it():
    modules = loaded_modules("-h")

    assert {"nomadtls_cli.status", "nomadtls_cli.keygen", "nomadtls_cli.tls"} <= set(modules)

def test_importtime_shows_no_heavy_module_on_the_status_help_path():
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "nomadtls_cli.main",
                           "status", "-h"], capture_output=True, text=True, timeout=60)

    assert done.returncode == 0
    imported = [line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:") and "|" in line]
    assert "nomadtls_cli.status" in imported
    assert not [name for name in imported if name.split(".")[0] in HEAVY]
