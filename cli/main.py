"""The console script's entry point, `run()`, which runs the `nomadtls` command and owns
the process while it does: it turns the cyclic garbage collector off before anything heavy
is imported, then loads the typer app (`nomadtls_cli.app`) and hands it the arguments.
"""

from __future__ import annotations

import gc
import sys

TYPE_CHECKING = False  # typing itself is not imported before the collector is off
if TYPE_CHECKING:  # pragma: no cover
    from typing import Sequence

__all__ = ["app", "run"]


def run(argv: Sequence[str] | None = None) -> None:
    """Run the tool with `argv` (by default the process's arguments) and exit: 0 on
    success, 1 on any error, 2 on a usage error.

    It is meant to be the last thing a process does. The cyclic garbage collector stays
    off for the run: a command is short and makes no reference cycles worth collecting, yet
    the collector's passes would walk every live object again and again while typer and
    requests load and while a list of tens of thousands of jobs is decoded (a tenth to a
    sixth of the command's time), and without them peak memory stays as it was. At the end
    every object is frozen (`gc.freeze`), so that the collections the interpreter makes as
    it shuts down skip them too, and the collector is switched back on if it was. A command
    that ran for long (following a blocking query, say) should switch it on itself. The
    library (`nomadtls`) never touches the collector.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        from .app import app

        app(args=list(argv) if argv is not None else sys.argv[1:], prog_name="nomadtls")
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def __getattr__(name: str):
    """`app`, the typer app, loaded on first use (tests drive it with CliRunner)."""
    if name == "app":
        from .app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    run()
