"""The layout of every help page: usage, what the command does, its own options, the
connection options, then an "Environment Variables" section generated from the settings
registry, so that the help and the registry cannot drift apart.

Plain text, wrapped by Click's formatter to the terminal (at most 80 columns); rich is
never involved.
"""

from __future__ import annotations

import difflib
from typing import Any

import typer.core

from nomadtls.settings import SETTINGS

from .options import CONNECTION_PANEL

__all__ = ["NomadCommand", "NomadGroup", "adopt", "environment_rows", "MAX_WIDTH"]

# Help is wrapped to the terminal's width, but never wider than this.
MAX_WIDTH = 80

_SPELLING_NOTE = (
    "Every long option may also be written with two dashes (--address), and take its "
    "value after '=' or a space.")
_NO_COLOR = ("NO_COLOR", "Any value turns colour off, as NOMAD_CLI_NO_COLOR does; it is read "
             "by many tools, not only by Nomad's.")


def environment_rows() -> list[tuple[str, str]]:
    """Each registry variable as (name and flag, meaning and default), in registry order."""
    return [(setting.spelled(), f"{setting.help} Default: {setting.default or 'none'}.")
            for setting in SETTINGS]


def _option_record(param: Any, ctx: Any) -> tuple[str, str] | None:
    """How one option reads in the list: its Nomad spelling with a value placeholder."""
    if getattr(param, "hidden", False) or param.param_type_name != "option":
        return None
    if param.opts and set(param.opts) & set(ctx.help_option_names):
        names = [n for n in ctx.help_option_names if len(n) == 2 or n.startswith("--")]
        return ", ".join(names), "Show this help and exit."
    name = param.opts[0]
    if not param.is_flag:
        name = f"{name}={param.metavar or param.make_metavar(ctx)}"
    record = param.get_help_record(ctx)  # typer's text, with the default when shown
    return name, record[1] if record else ""


def _format_options(command: Any, ctx: Any, formatter: Any) -> None:
    """Arguments, the command's own options, the connection options, then (for a group)
    its commands."""
    arguments, own, connection = [], [], []
    for param in command.get_params(ctx):
        if param.param_type_name == "argument":
            record = param.get_help_record(ctx)
            if record is not None and record[1]:
                arguments.append(record)
            continue
        record = _option_record(param, ctx)
        if record is None:
            continue
        panel = getattr(param, "rich_help_panel", None)
        (connection if panel == CONNECTION_PANEL else own).append(record)
    own.sort(key=lambda record: record[0].startswith("-h"))  # help last
    for title, rows in (("Arguments", arguments), ("Options", own),
                        (CONNECTION_PANEL, connection)):
        if rows:
            with formatter.section(title):
                formatter.write_dl(rows)
    if connection:
        formatter.write_paragraph()
        formatter.write_text(_SPELLING_NOTE)
    if isinstance(command, typer.core.TyperGroup):
        command.format_commands(ctx, formatter)


def _format_epilog(command: Any, ctx: Any, formatter: Any) -> None:
    """The command's own epilog, if any, then the Environment Variables section."""
    typer.core.TyperCommand.format_epilog(command, ctx, formatter)
    with formatter.section("Environment Variables"):
        for term, text in [*environment_rows(), _NO_COLOR]:
            formatter.write_text(term)
            with formatter.indentation():
                formatter.write_text(text)


def _parse_args(base: type, command: Any, ctx: Any, args: list[str]) -> list[str]:
    """Parse as typer does, but name an unknown option as it was typed.

    Click reads an unknown single-dash word such as -adress as a bundle of one-letter
    options and reports its first letter ("-a"); the user should read the word they typed,
    and the option they probably meant.
    """
    given = list(args)  # the parser consumes `args`
    try:
        return base.parse_args(command, ctx, args)
    except typer.TyperException as error:
        short = getattr(error, "option_name", None)
        if not short or not hasattr(error, "possibilities"):
            raise
        names = {name for param in command.get_params(ctx) for name in param.opts}
        typed = next((word for word in (arg.split("=", 1)[0] for arg in given)
                      if word.startswith("-") and word not in names and word != "--"), short)
        spelled: dict[str, str] = {}  # bare name -> its first spelling, Nomad's
        for param in command.get_params(ctx):
            if not getattr(param, "hidden", False):
                for name in param.opts:
                    spelled.setdefault(name.lstrip("-"), name)
        close = difflib.get_close_matches(typed.lstrip("-"), sorted(spelled), n=2)
        error.option_name, error.possibilities = typed, None
        error.message = f"No such option: {typed}"
        if close:
            error.message += f" (did you mean {' or '.join(spelled[n] for n in close)}?)"
        raise


# The two classes share the layout through plain functions rather than a mixin: a mixin
# would change the object layout and stop `adopt` from switching a command's class.
class NomadCommand(typer.core.TyperCommand):
    """A typer command with the nomadtls help layout."""

    __slots__ = ()
    format_options = _format_options
    format_epilog = _format_epilog

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return _parse_args(typer.core.TyperCommand, self, ctx, args)


class NomadGroup(typer.core.TyperGroup):
    """A typer command group with the nomadtls help layout, which it also gives to every
    command and group under it."""

    __slots__ = ()
    format_options = _format_options
    format_epilog = _format_epilog

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for command in self.commands.values():
            adopt(command)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return _parse_args(typer.core.TyperGroup, self, ctx, args)


def adopt(command: Any) -> Any:
    """Give `command` and everything under it the nomadtls help layout, and return it.

    Sub-apps written elsewhere (such as `nomadtls tls`) are built by typer with its own
    classes; switching their class, which only adds help formatting, gives every help page
    of the tool one shape without each module having to remember it.
    """
    if type(command) is typer.core.TyperCommand:
        command.__class__ = NomadCommand
    elif type(command) is typer.core.TyperGroup:
        command.__class__ = NomadGroup
    for sub in getattr(command, "commands", {}).values():
        adopt(sub)
    return command
