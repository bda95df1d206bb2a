"""The `nomadtls tls` commands: make a cluster's private CA and certificates, and check a
connection to an agent from both ends."""

import typer

app = typer.Typer(
    help="Create a private CA and agent certificates, and check a TLS connection.",
    no_args_is_help=True,
)
