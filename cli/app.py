"""The `nomadtls` command as a typer app; `nomadtls_cli.main.run` runs it.

Start-up is kept to typer and the settings registry. A command's module is imported, and
turned into Click objects, only when that command is asked for, so `nomadtls status` never
loads the `tls` commands or `keygen`; the commands load the client (and with it requests and
the TLS machinery) only when they run; rich is never used; and the root callback does no
work. So `nomadtls status -h` costs little more than importing typer.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Annotated, Any, Iterable, Iterator, Optional

import typer

from .help import NomadGroup, adopt
from .options import option_names

__all__ = ["app", "COMMANDS"]

# The tool's commands, in the order its help lists them: name -> (module of this package,
# the attribute there, which is a command's function or the typer app of a group of
# commands, and the line the tool's help shows for it).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "status": ("status", "status", "List the jobs, or show what an ID prefix names."),
    "keygen": ("keygen", "keygen", "Print a new gossip encryption key."),
    "tls": ("tls", "app", "Create a cluster CA and certificates; check TLS to an agent."),
}


def load_command(name: str) -> Any:
    """The Click command (or group) for the entry `name` of COMMANDS, with the nomadtls
    help layout, built as typer builds a registered command or sub-app."""
    module, attribute, short_help = COMMANDS[name]
    # The import statement's own machinery, which `-X importtime` reports (import_module
    # would hide the command's modules from it).
    target = getattr(__import__(module, globals(), None, [attribute], 1), attribute)
    if isinstance(target, typer.Typer):
        command = typer.main.get_command(target)
        command.name, command.short_help = name, short_help
    else:
        single = typer.Typer(add_completion=False, rich_markup_mode=None)
        single.command(name, short_help=short_help)(target)
        command = typer.main.get_command(single)
    return adopt(command)


class LazyCommands(MutableMapping):
    """A group's commands by name, each loaded by `load_command` when first looked up;
    listing the names loads nothing."""

    def __init__(self, names: Iterable[str]) -> None:
        self._commands: dict[str, Any] = dict.fromkeys(names)

    def __getitem__(self, name: str) -> Any:
        command = self._commands[name]
        if command is None:
            command = self._commands[name] = load_command(name)
        return command

    def __setitem__(self, name: str, command: Any) -> None:
        self._commands[name] = command

    def __delitem__(self, name: str) -> None:
        del self._commands[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._commands)

    def __len__(self) -> int:
        return len(self._commands)


class NomadTool(NomadGroup):
    """The root group: its commands are those of COMMANDS, each loaded on first use."""

    __slots__ = ()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commands = LazyCommands(COMMANDS)

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)  # typer's own would load every command for its names


app = typer.Typer(
    name="nomadtls",
    cls=NomadTool,
    help="Talk to HashiCorp Nomad agents over HTTP, with TLS done right.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "-help", "--help"],
                      "max_content_width": 80},
)


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
