"""The `nomadtls tls` commands: make a cluster's private CA and its agents' certificates,
and check a TLS connection to an agent from both ends."""

from __future__ import annotations

import ipaddress
import os
from typing import TYPE_CHECKING, List, Optional

import typer

from .options import (Connection, connection_options, option_names, print_error,
                      reported_errors)

if TYPE_CHECKING:  # pragma: no cover
    from nomadtls.probe import CheckResult, Handshake
    from nomadtls.settings import Settings

    from .render import Paint

app = typer.Typer(
    help="Create a private CA and agent certificates, and check a TLS connection.",
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,
)
ca_app = typer.Typer(help="Manage the cluster's private certificate authority.",
                     no_args_is_help=True, rich_markup_mode=None)
cert_app = typer.Typer(help="Create certificates for servers, clients and the CLI.",
                       no_args_is_help=True, rich_markup_mode=None)
app.add_typer(ca_app, name="ca")
app.add_typer(cert_app, name="cert")

_SERVER_WARNING = (
    "Warning: a server certificate lets whoever holds it act as a server of the whole "
    "cluster,\nwith access to every job, variable and ACL token. Install it on server "
    "hosts only and\nguard its key as closely as the CA's."
)


def _write(credential, cert_path: str, key_path: str) -> None:
    """Write a certificate and key into new files; ConfigError naming the file that is
    already there or cannot be written."""
    from nomadtls.errors import ConfigError

    try:
        credential.write(cert_path, key_path)
    except FileExistsError as exc:
        raise ConfigError(f"{exc.filename} already exists; refusing to overwrite it",
                          hint="move it aside, or run the command in another directory"
                          ) from None
    except OSError as exc:
        raise ConfigError(f"cannot write {exc.filename or cert_path}: {exc.strerror}"
                          ) from None


def _check_names(**names: str) -> None:
    """Refuse, as a usage error, a value that is no DNS name; each keyword is the option
    that gave it."""
    from nomadtls.errors import ConfigError
    from nomadtls.pki import check_dns_name

    for option, value in names.items():
        try:
            check_dns_name(value, "name" if option == "additional-dnsname" else option)
        except ConfigError as exc:
            raise typer.BadParameter(exc.message, param_hint=f"'-{option}'") from None


@ca_app.command("create")
def ca_create(
    days: int = typer.Option(
        1825, *option_names("-days"), min=1, metavar="DAYS",
        help="Days the CA is valid for."),
    domain: str = typer.Option(
        "nomad", *option_names("-domain"), metavar="DOMAIN",
        help="Domain of the cluster's names (server.<region>.<domain>); also names the "
             "files."),
    name_constraint: bool = typer.Option(
        False, *option_names("-name-constraint"),
        help="Let the CA vouch only for names under the domain and for localhost."),
) -> None:
    """Create a private certificate authority for the cluster's TLS.

    Writes <domain>-agent-ca.pem and its key <domain>-agent-ca-key.pem (mode 0600) into
    the current directory, and never overwrites an existing file. The CA is an ECDSA
    P-256 key, valid five years unless -days says otherwise.
    """
    _check_names(domain=domain)
    with reported_errors():
        from nomadtls.pki import ca_filenames, create_ca

        cert_path, key_path = ca_filenames(domain)
        ca = create_ca(domain=domain, days=days, name_constraint=name_constraint)
        _write(ca, cert_path, key_path)
    typer.echo(f"Wrote the CA certificate to {cert_path}")
    typer.echo(f"Wrote the CA key to {key_path} (mode 0600); keep it off the agents")


@cert_app.command("create")
def cert_create(
    server: bool = typer.Option(
        False, *option_names("-server"), help="Create a certificate for a server agent."),
    client: bool = typer.Option(
        False, *option_names("-client"), help="Create a certificate for a client agent."),
    cli: bool = typer.Option(
        False, *option_names("-cli"), help="Create a certificate for the CLI and API callers."),
    region: Optional[str] = typer.Option(
        None, *option_names("-region"), metavar="REGION", show_default=False,
        help="Region the certificate is for. Defaults to NOMAD_REGION, then global."),
    domain: str = typer.Option(
        "nomad", *option_names("-domain"), metavar="DOMAIN",
        help="Domain of the cluster's names, as given to tls ca create."),
    days: int = typer.Option(
        365, *option_names("-days"), min=1, metavar="DAYS",
        help="Days the certificate is valid for."),
    additional_dnsname: List[str] = typer.Option(
        [], *option_names("-additional-dnsname"), metavar="NAME",
        show_default=False,
        help="Another DNS name the certificate is valid for; repeat for more."),
    additional_ipaddress: List[str] = typer.Option(
        [], *option_names("-additional-ipaddress"), metavar="IP",
        show_default=False,
        help="Another IP address the certificate is valid for; repeat for more."),
    ca: Optional[str] = typer.Option(
        None, *option_names("-ca"), metavar="FILE", show_default=False,
        help="The CA certificate. Defaults to <domain>-agent-ca.pem."),
    key: Optional[str] = typer.Option(
        None, *option_names("-key"), metavar="FILE", show_default=False,
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

    with reported_errors():
        from nomadtls.pki import cert_filenames

        credential = _sign(role, region, domain, days, additional_dnsname, ips, ca, key)
        cert_path, key_path = cert_filenames(role, region, domain)
        _write(credential, cert_path, key_path)
    typer.echo(f"Wrote the {role} certificate for {credential.common_name} to {cert_path}")
    typer.echo(f"Wrote its key to {key_path} (mode 0600)")
    if role == "server":
        typer.echo(_SERVER_WARNING, err=True)


def _sign(role: str, region: str, domain: str, days: int, dns_names: List[str],
          ips: List[str], ca_file: str | None, key_file: str | None):
    """A certificate for `role`, signed by the CA read from `ca_file` and `key_file`
    (by default the files `tls ca create` writes for `domain`)."""
    from nomadtls.errors import ConfigError
    from nomadtls.pki import ca_filenames, create_certificate, load_credential

    default_ca, default_key = ca_filenames(domain)
    ca_file, key_file = ca_file or default_ca, key_file or default_key
    for path, what in ((ca_file, "CA certificate"), (key_file, "CA key")):
        if not os.path.exists(path):
            raise ConfigError(f"the {what} file {path} does not exist",
                              hint="create the CA first with: nomadtls tls ca create, or "
                                   "pass -ca and -key")
    authority = load_credential(ca_file, key_file)
    return create_certificate(authority, role, region=region, domain=domain, days=days,
                              dns_names=dns_names, ip_addresses=ips)


@app.command("check", short_help="Check the TLS connection to an agent; say what to fix.")
@connection_options
def check(connection: Connection) -> None:
    """Check the TLS connection to an agent from both ends, and say what to fix.

    Shows each connection setting and where it came from; the certificates the agent
    presents, read without verifying them; whether the name checked is among them;
    whether the agent demands a client certificate; the TLS version and cipher. Then it
    makes a verified request of /v1/agent/self and shows the agent's region and version.
    Exits 0 only when that request succeeds over verified TLS; otherwise it prints the
    same diagnosis and hint as any other command, and exits 1.
    """
    from nomadtls import probe

    from .render import Paint, use_color

    settings = connection.settings()
    paint = Paint(use_color(settings.no_color, settings.force_color))
    typer.echo(_settings_section(settings, paint))
    result = probe.check(settings)
    typer.echo(_tls_section(result, paint))
    if result.agent is not None:
        typer.echo(_agent_section(result, paint))
    typer.echo("")
    if settings.skip_verify:
        typer.echo(f"Note: {settings.label('skip_verify')} turns verification off for other "
                   f"commands; this check verifies all the same.")
    if not result.ok:
        print_error(result.error)
        raise typer.Exit(1)
    typer.echo(_verdict(result))


# What `check` leaves out of the settings it shows: they colour output, not connect.
_NOT_CONNECTION = ("no_color", "force_color")


def _settings_section(settings: Settings, paint: Paint) -> str:
    from .render import key_values

    rows = []
    for setting, shown, source in settings.describe():
        if setting.name in _NOT_CONNECTION:
            continue
        if source == "flag":
            shown += f"  (flag {setting.flag})"
        elif source == setting.env:
            shown += "  (environment)"
        elif not shown.startswith("(unset"):
            shown += "  (default)"
        rows.append((setting.env, shown))
    return f"{paint.title('Settings')}\n{_indent(key_values(rows))}"


def _tls_section(result: CheckResult, paint: Paint) -> str:
    from nomadtls._peer import server_name_origin

    from .render import key_values

    settings = result.settings
    if not settings.address.is_tls:
        return f"\n{paint.title('TLS')}\n  none: {settings.address} is not an https:// address"
    handshake = result.handshake
    if handshake is None:
        failure = result.look_error.message if result.look_error else "no handshake"
        return f"\n{paint.title('TLS')}\n  Handshake = failed: {failure}"

    blocks = [paint.title("Agent certificates (as presented, before any verification)")]
    if not handshake.chain:
        blocks.append("  none could be read")
    for position, cert in enumerate(handshake.chain):
        role = "the agent's own" if position == 0 else ("a CA" if cert.is_ca else "")
        blocks.append(f"  {position + 1}. {cert.subject}" + (f"  ({role})" if role else ""))
        blocks.append(_indent(key_values([
            ("Names", ", ".join((*cert.dns_names, *cert.ip_addresses)) or "none"),
            ("Issuer", cert.issuer),
            ("Valid", f"{_when(cert.not_before)} to {_when(cert.not_after)} "
                      f"({_days_left(cert.days_left())})"),
        ]), "     "))

    rows = []
    if handshake.tls_version:
        rows += [("Version", handshake.tls_version), ("Cipher", handshake.cipher)]
    else:
        rows.append(("Version", f"none: the agent ended the handshake ({handshake.failure})"))
    origin = server_name_origin(settings, lead="from ")
    rows.append(("Name checked", f"{handshake.checked_name} ({origin}): "
                                 f"{_name_verdict(handshake)}"))
    rows.append(("Client certificate", _client_certificate(handshake, settings)))
    return ("\n" + "\n".join(blocks) + f"\n\n{paint.title('TLS')}\n"
            + _indent(key_values(rows)))


def _agent_section(result: CheckResult, paint: Paint) -> str:
    from .render import key_values

    agent = result.agent
    if not any((agent.region, agent.version, agent.name)):
        return (f"\n{paint.title('Agent')}\n  answered; reading its region and version needs "
                "a token with agent:read")
    rows = [("Region", agent.region), ("Version", agent.version), ("Name", agent.name),
            ("Datacenter", agent.datacenter)]
    return f"\n{paint.title('Agent')}\n" + _indent(key_values(rows))


def _verdict(result: CheckResult) -> str:
    from nomadtls._peer import server_name

    settings = result.settings
    name = server_name(settings)
    mutual = " with mutual TLS" if settings.client_cert else ""
    return (f"OK: the agent's certificate is trusted and valid for {name}, and a verified "
            f"request reached the agent{mutual}.")


def _name_verdict(handshake: Handshake) -> str:
    matched = handshake.name_matched
    if matched is None:
        return "not known, as no certificate was read"
    return "in the certificate" if matched else "NOT in the certificate"


def _client_certificate(handshake: Handshake, settings: Settings) -> str:
    from nomadtls import probe

    wants = {
        probe.REQUIRED: "required by the agent (verify_https_client)",
        probe.OPTIONAL: "asked for by the agent, but optional",
        probe.NOT_REQUESTED: "not asked for by the agent",
        probe.NOT_REQUIRED: "not required by the agent",
    }[handshake.client_certificate]
    if settings.client_cert:
        return f"{wants}; one is set ({settings.label('client_cert')})"
    return f"{wants}; none is set"


def _when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _days_left(days: int) -> str:
    if days < 0:
        return f"EXPIRED {-days} day{'s' if days != -1 else ''} ago"
    return f"{days} day{'s' if days != 1 else ''} left"


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())
