"""The `nomadtls tls` commands: make a cluster's private CA and its agents' certificates,
and check a TLS connection to an agent from both ends."""

from __future__ import annotations

import ipaddress
import os
from typing import List, Optional

import typer

_CONTEXT = {"help_option_names": ["-h", "--help"]}

app = typer.Typer(
    help="Create a private CA and agent certificates, and check a TLS connection.",
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,
    context_settings=_CONTEXT,
)
ca_app = typer.Typer(help="Manage the cluster's private certificate authority.",
                     no_args_is_help=True, rich_markup_mode=None, context_settings=_CONTEXT)
cert_app = typer.Typer(help="Create certificates for servers, clients and the CLI.",
                       no_args_is_help=True, rich_markup_mode=None, context_settings=_CONTEXT)
app.add_typer(ca_app, name="ca")
app.add_typer(cert_app, name="cert")

_SERVER_WARNING = (
    "Warning: a server certificate lets whoever holds it act as a server of the whole "
    "cluster,\nwith access to every job, variable and ACL token. Install it on server "
    "hosts only and\nguard its key as closely as the CA's."
)


def _fail(message: str, hint: str | None = None) -> typer.Exit:
    """Print a plain error (and what to do about it) on stderr; return the exit to raise."""
    typer.echo(f"Error: {message}", err=True)
    if hint:
        typer.echo(hint[:1].upper() + hint[1:], err=True)
    return typer.Exit(1)


def _write(credential, cert_path: str, key_path: str) -> None:
    """Write a certificate and key into new files, or fail naming the one already there."""
    try:
        credential.write(cert_path, key_path)
    except FileExistsError as exc:
        raise _fail(f"{exc.filename} already exists; refusing to overwrite it",
                    "move it aside or run the command in another directory") from None
    except OSError as exc:
        raise _fail(f"cannot write {exc.filename or cert_path}: {exc.strerror}") from None


def _check_names(**names: str) -> None:
    """Refuse, as a usage error, a value that is no DNS name; each keyword is the option
    that gave it."""
    from nomadtls.errors import ConfigError
    from nomadtls.pki import ca_filenames

    for option, value in names.items():
        try:
            ca_filenames(value)  # validates the name it builds file names from
        except ConfigError as exc:
            raise typer.BadParameter(exc.message, param_hint=f"'-{option}'") from None


@ca_app.command("create")
def ca_create(
    days: int = typer.Option(
        1825, "-days", "--days", min=1, metavar="DAYS",
        help="Days the CA is valid for."),
    domain: str = typer.Option(
        "nomad", "-domain", "--domain", metavar="DOMAIN",
        help="Domain of the cluster's names (server.<region>.<domain>); also names the "
             "files."),
    name_constraint: bool = typer.Option(
        False, "-name-constraint", "--name-constraint",
        help="Let the CA vouch only for names under the domain and for localhost."),
) -> None:
    """Create a private certificate authority for the cluster's TLS.

    Writes <domain>-agent-ca.pem and its key <domain>-agent-ca-key.pem (mode 0600) into
    the current directory, and never overwrites an existing file. The CA is an ECDSA
    P-256 key, valid five years unless -days says otherwise.
    """
    _check_names(domain=domain)
    from nomadtls.pki import ca_filenames, create_ca

    cert_path, key_path = ca_filenames(domain)
    ca = create_ca(domain=domain, days=days, name_constraint=name_constraint)
    _write(ca, cert_path, key_path)
    typer.echo(f"Wrote the CA certificate to {cert_path}")
    typer.echo(f"Wrote the CA key to {key_path} (mode 0600); keep it off the agents")


@cert_app.command("create")
def cert_create(
    server: bool = typer.Option(
        False, "-server", "--server", help="Create a certificate for a server agent."),
    client: bool = typer.Option(
        False, "-client", "--client", help="Create a certificate for a client agent."),
    cli: bool = typer.Option(
        False, "-cli", "--cli", help="Create a certificate for the CLI and API callers."),
    region: Optional[str] = typer.Option(
        None, "-region", "--region", metavar="REGION", show_default=False,
        help="Region the certificate is for. Defaults to NOMAD_REGION, then global."),
    domain: str = typer.Option(
        "nomad", "-domain", "--domain", metavar="DOMAIN",
        help="Domain of the cluster's names, as given to tls ca create."),
    days: int = typer.Option(
        365, "-days", "--days", min=1, metavar="DAYS",
        help="Days the certificate is valid for."),
    additional_dnsname: List[str] = typer.Option(
        [], "-additional-dnsname", "--additional-dnsname", metavar="NAME",
        show_default=False,
        help="Another DNS name the certificate is valid for; repeat for more."),
    additional_ipaddress: List[str] = typer.Option(
        [], "-additional-ipaddress", "--additional-ipaddress", metavar="IP",
        show_default=False,
        help="Another IP address the certificate is valid for; repeat for more."),
    ca: Optional[str] = typer.Option(
        None, "-ca", "--ca", metavar="FILE", show_default=False,
        help="The CA certificate. Defaults to <domain>-agent-ca.pem."),
    key: Optional[str] = typer.Option(
        None, "-key", "--key", metavar="FILE", show_default=False,
        help="The CA key. Defaults to <domain>-agent-ca-key.pem."),
) -> None:
    """Create a certificate signed by the cluster's CA for a server, a client or the CLI.

    The certificate is named <role>.<region>.<domain> and is also valid for localhost
    (and 127.0.0.1 for servers and clients). It is written, with its key (mode 0600), to
    <region>-<role>-<domain>.pem and <region>-<role>-<domain>-key.pem in the current
    directory; an existing file is never overwritten.
    """
    roles = [name for name, chosen in (("server", server), ("client", client), ("cli", cli))
             if chosen]
    if len(roles) != 1:
        raise typer.BadParameter("give exactly one of -server, -client and -cli")
    role = roles[0]
    region = region or os.environ.get("NOMAD_REGION") or "global"
    _check_names(domain=domain, region=region)
    for name in additional_dnsname:
        _check_names(**{"additional-dnsname": name})
    ips = []
    for text in additional_ipaddress:
        try:
            ips.append(str(ipaddress.ip_address(text.strip("[]"))))
        except ValueError:
            raise typer.BadParameter(f"{text!r} is not an IP address",
                                     param_hint="'-additional-ipaddress'") from None

    from nomadtls.errors import ConfigError
    from nomadtls.pki import ca_filenames, cert_filenames, create_certificate, load_credential

    default_ca, default_key = ca_filenames(domain)
    ca_path, ca_key_path = ca or default_ca, key or default_key
    for path, what in ((ca_path, "CA certificate"), (ca_key_path, "CA key")):
        if not os.path.exists(path):
            raise _fail(f"the {what} file {path} does not exist",
                        "create the CA first with: nomadtls tls ca create, or pass -ca and "
                        "-key")
    try:
        authority = load_credential(ca_path, ca_key_path)
        credential = create_certificate(
            authority, role, region=region, domain=domain, days=days,
            dns_names=additional_dnsname, ip_addresses=ips)
    except ConfigError as exc:
        raise _fail(exc.message, exc.hint) from None
    cert_path, key_path = cert_filenames(role, region, domain)
    _write(credential, cert_path, key_path)
    typer.echo(f"Wrote the {role} certificate for {credential.common_name} to {cert_path}")
    typer.echo(f"Wrote its key to {key_path} (mode 0600)")
    if role == "server":
        typer.echo(_SERVER_WARNING, err=True)
