"""nomadtls: a client for HashiCorp Nomad's HTTP API that gets TLS right.

`NomadClient` reads its settings from keyword arguments or the same NOMAD_* variables
Nomad uses; every failure it raises is a `NomadError`. The heavy modules (requests, the
TLS machinery) load on first use, so importing this package stays cheap.
"""

from __future__ import annotations

from .errors import *  # noqa: F401,F403  (the error tree is small and always needed)
from .errors import __all__ as _error_names

__version__ = "0.1.0.dev0"

_LAZY = {
    "NomadClient": ".client",
    "Response": ".client",
    "Settings": ".settings",
    "resolve": ".settings",
    "SETTINGS": ".settings",
}

__all__ = ["NomadClient", "Response", "Settings", "resolve", "SETTINGS", *_error_names]

# Not `typing.TYPE_CHECKING`: typing alone would cost `import nomadtls` several times the rest.
TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from .client import NomadClient, Response
    from .settings import SETTINGS, Settings, resolve


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nomadtls' has no attribute {name!r}")
    import importlib  # here, not at the top: it would cost `import nomadtls` a third more

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
