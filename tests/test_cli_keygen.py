"""`nomadtls keygen`: a gossip key of 16 random bytes by default, 24 or 32 on request, as
standard base64 alone on stdout; any other size is a usage error."""

from __future__ import annotations

import base64

import pytest
from typer.testing import CliRunner

from nomadtls_cli import keygen as keygen_module
from nomadtls_cli.main import app


def keygen(*args: str):
    return CliRunner().invoke(app, ["keygen", *args])


def decoded(stdout: str) -> bytes:
    assert stdout.endswith("\n") and stdout.count("\n") == 1
    return base64.b64decode(stdout.strip(), validate=True)


def test_the_default_key_is_16_bytes_in_24_characters():
    result = keygen()

    assert (result.exit_code, result.stderr) == (0, "")
    assert len(result.stdout.strip()) == 24
    assert len(decoded(result.stdout)) == 16


@pytest.mark.parametrize("size, characters", [(16, 24), (24, 32), (32, 44)])
@pytest.mark.parametrize("spelling", ["-bytes={}", "-bytes {}", "--bytes {}", "--bytes={}"])
def test_each_size_nomad_accepts_in_either_spelling(size, characters, spelling):
    result = keygen(*spelling.format(size).split())

    assert result.exit_code == 0, result.output
    assert len(result.stdout.strip()) == characters
    assert len(decoded(result.stdout)) == size


@pytest.mark.parametrize("size", ["0", "8", "17", "64", "-16", "sixteen"])
def test_any_other_size_is_refused_as_a_usage_error(size):
    result = keygen(f"-bytes={size}")

    assert result.exit_code == 2
    assert result.stdout == ""
    assert "-bytes" in result.stderr.splitlines()[-1]


def test_keys_come_from_the_operating_system(monkeypatch):
    asked = []

    def token_bytes(size):
        asked.append(size)
        return bytes(range(size))

    monkeypatch.setattr("secrets.token_bytes", token_bytes)

    result = keygen("-bytes", "32")

    assert asked == [32]
    assert decoded(result.stdout) == bytes(range(32))


def test_two_keys_differ():
    assert keygen().stdout != keygen().stdout


def test_the_key_is_standard_base64_with_padding(monkeypatch):
    monkeypatch.setattr("secrets.token_bytes", lambda size: b"\xfb\xef\xff" * 5 + b"\xfb")

    assert keygen_module.new_key(16) == "++//" * 5 + "+w=="
