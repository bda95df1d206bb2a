"""The `nomadtls` command as a typer app; `nomadtls_cli.main.run` runs it.

Start-up is kept to typer and the settings registry: the commands load the client (and
with it requests and the TLS machinery) only when they run, rich is never used, and the
root callback does no work, so `nomadtls status -h` costs little more than importing typer.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from . import keygen, status, tls
from .help import NomadGroup
from .options import option_names

__all__ = ["app"]

app = typer.Typer(
    name="nomadtls",
    cls=NomadGroup,
    help="Talk to HashiCorp Nomad agents over HTTP, with TLS done right.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "-help", "--help"],
                      "max_content_width": 80},
)

app.command("status", short_help="List the jobs, or show what an ID prefix names.")(
    status.status)
app.command("keygen", short_help="Print a new gossip encryption key.")(keygen.keygen)
app.add_typer(tls.app, name="tls",
              short_help="Create a cluster CA and certificates; check TLS to an agent.")


def _version(value: bool) -> None:
    if value:
        from nomadtls import __version__

        typer.echo(f"nomadtls {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[Optional[bool], typer.Option(
        *option_names("-version"), callback=_version, is_eager=True,
        help="Print the version and exit.")] = None,
) -> None:
    """Talk to HashiCorp Nomad agents over HTTP, with TLS done right.

    Every command that talks to an agent reads the same NOMAD_* variables as Nomad's own
    CLI, and takes the same flags to override them.
    """
