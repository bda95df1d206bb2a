"""`nomadtls keygen`: a new gossip encryption key for a Nomad cluster's servers."""

from __future__ import annotations

from typing import Annotated

import typer

from .options import option_names

__all__ = ["keygen", "KEY_SIZES", "new_key"]

# The key lengths, in bytes, Nomad agents accept for gossip encryption.
KEY_SIZES = (16, 24, 32)


def new_key(size: int = 16) -> str:
    """`size` random bytes from the operating system, as standard base64 with padding."""
    import base64
    import secrets

    if size not in KEY_SIZES:
        raise ValueError(f"a gossip key has 16, 24 or 32 bytes, not {size}")
    return base64.b64encode(secrets.token_bytes(size)).decode("ascii")


def _size(value: int) -> int:
    if value not in KEY_SIZES:
        raise typer.BadParameter(f"{value} is not one of 16, 24 and 32")
    return value


def keygen(
    size: Annotated[int, typer.Option(
        *option_names("-bytes"), metavar="N", callback=_size,
        help="Length of the key in bytes: 16, 24 or 32 (what Nomad 1.0 and later make).")
    ] = 16,
) -> None:
    """Print a new gossip encryption key: random bytes from the operating system, in
    standard base64, alone on stdout.

    Give it to every server of the cluster as the `encrypt` setting of its `server` block.
    """
    typer.echo(new_key(size))
