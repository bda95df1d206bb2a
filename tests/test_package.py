"""The package face: `import nomadtls` loads the error tree and nothing heavier, and every
public name is there, its module loaded on first use."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import nomadtls


def modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running `code`, beyond its start-up."""
    script = ("import json, sys\n"
              "before = set(sys.modules)\n"
              f"{code}\n"
              "sys.stderr.write(json.dumps(sorted(set(sys.modules) - before)))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stderr))


def test_importing_the_package_loads_only_the_error_tree():
    loaded = modules_after("import nomadtls")

    assert {"nomadtls", "nomadtls.errors"} <= loaded
    assert not {"typing", "nomadtls.settings", "nomadtls.client", "requests", "urllib3",
                "cryptography"} & loaded


def test_a_public_name_loads_its_module_on_first_use():
    loaded = modules_after("import nomadtls\nnomadtls.resolve")

    assert "nomadtls.settings" in loaded and "nomadtls.client" not in loaded


@pytest.mark.parametrize("name", nomadtls.__all__)
def test_every_public_name_is_there_and_listed(name):
    assert getattr(nomadtls, name) is not None
    assert name in dir(nomadtls)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Client'"):
        nomadtls.Client  # noqa: B018
