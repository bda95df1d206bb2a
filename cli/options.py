"""The connection options shared by every command that talks to an agent, generated from
the settings registry, and the plain way such a command reports what went wrong.

A command opts in with the `connection_options` decorator, turns what the user typed into
a client with `make_client` (or into settings with `Connection.settings`), and prints a
`NomadError` with `print_error`.
"""

from __future__ import annotations

import functools
import inspect
import os
import re
import sys
import textwrap
import traceback
import warnings
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, Callable, Iterator, Mapping, Optional, TextIO

import typer

from nomadtls.errors import NomadError
from nomadtls.settings import SETTINGS, Setting

if TYPE_CHECKING:  # pragma: no cover
    from nomadtls.client import NomadClient
    from nomadtls.settings import Settings

__all__ = ["Connection", "connection_options", "make_client", "print_error",
           "reported_errors", "CONNECTION_PANEL", "option_names"]

# The help text groups the options whose click parameter carries this panel name.
CONNECTION_PANEL = "Connection Options"

# The most lines a failure takes on stderr, warnings included: what failed, what to change.
MAX_LINES = 4

# Hidden spellings Nomad also accepts, as setting name -> extra flag.
_ALIASES = {"skip_verify": "-insecure"}


def option_names(flag: str) -> tuple[str, str]:
    """Both spellings of a long option: Nomad's single dash first, then GNU's double dash.

    Click matches either, with the value after "=" or a space.
    """
    return flag, "-" + flag


def _metavar(setting: Setting) -> str | None:
    if setting.kind in ("bool", "flag"):
        return None
    if setting.kind == "path":
        return "DIR" if setting.name.endswith("_path") else "FILE"
    return setting.name.rsplit("_", 1)[-1].upper()


def _summary(setting: Setting) -> str:
    """The first clause of the setting's help, for the option list; the full text is in
    the Environment Variables section."""
    first = re.split(r"[:;,.](?:\s|$)", setting.help, maxsplit=1)[0]
    return f"{first}; overrides {setting.env}."


def _option_parameters() -> list[inspect.Parameter]:
    """One keyword-only parameter per setting that has a flag, plus the hidden aliases and
    -debug, annotated so that typer makes them options."""
    params = []
    for setting in SETTINGS:
        if setting.flag is None:
            continue
        is_flag = setting.kind in ("bool", "flag")
        option = typer.Option(*option_names(setting.flag), metavar=_metavar(setting),
                              help=_summary(setting), show_default=False,
                              rich_help_panel=CONNECTION_PANEL)
        annotation = Annotated[bool if is_flag else Optional[str], option]
        params.append(inspect.Parameter(setting.name, inspect.Parameter.KEYWORD_ONLY,
                                        default=False if is_flag else None,
                                        annotation=annotation))
        alias = _ALIASES.get(setting.name)
        if alias:
            hidden = typer.Option(*option_names(alias), hidden=True,
                                  rich_help_panel=CONNECTION_PANEL)
            params.append(inspect.Parameter(f"{setting.name}_alias",
                                            inspect.Parameter.KEYWORD_ONLY, default=False,
                                            annotation=Annotated[bool, hidden]))
    debug = typer.Option(*option_names("-debug"),
                         help="Show the traceback when something fails.")
    params.append(inspect.Parameter("debug", inspect.Parameter.KEYWORD_ONLY, default=False,
                                    annotation=Annotated[bool, debug]))
    return params


_OPTION_PARAMETERS = _option_parameters()
_OPTION_NAMES = frozenset(p.name for p in _OPTION_PARAMETERS)


class Connection:
    """What the user typed on the command line for the connection settings.

    `typed` maps a setting's name to its value, and holds only the options that were
    actually given: a setting left out is resolved from its variable, then its default.
    `debug` is true when -debug was given. (A plain class, not a dataclass: generating a
    dataclass's methods costs every start-up, help included, about a millisecond.)
    """

    __slots__ = ("typed", "debug")

    def __init__(self, typed: Mapping[str, Any] | None = None, debug: bool = False) -> None:
        self.typed: Mapping[str, Any] = dict(typed or {})
        self.debug = debug

    def __repr__(self) -> str:
        return f"Connection(typed={sorted(self.typed)}, debug={self.debug})"

    def settings(self, environ: Mapping[str, str] | None = None) -> Settings:
        """Resolve what was typed, as flags (`origin="flag"`), over the NOMAD_* variables
        of `environ` (os.environ by default) and the defaults. Raises `ConfigError`."""
        from nomadtls.settings import resolve

        return resolve(environ, origin="flag", **self.typed)


def _gather(values: Mapping[str, Any]) -> Connection:
    typed = {}
    for setting in SETTINGS:
        value = values.get(setting.name)
        if values.get(f"{setting.name}_alias"):
            value = True
        if value not in (None, False, ""):
            typed[setting.name] = value
    return Connection(typed, debug=bool(values.get("debug")))


def connection_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Give a typer command the connection options (-address, -region, -namespace, -token,
    -ca-cert, -ca-path, -client-cert, -client-key, -tls-server-name, -tls-skip-verify and
    its hidden alias -insecure, -no-color, -force-color) and -debug.

    The decorated function declares a keyword parameter `connection: Connection`; it
    receives what the user typed there, and none of the individual options. Its body runs
    inside `reported_errors`, so a `NomadError` becomes plain lines on stderr and exit 1,
    and a library warning one `Warning:` line. Apply it below `@app.command()`::

        @app.command()
        @connection_options
        def check(connection: Connection) -> None:
            client = make_client(connection)
    """
    signature = inspect.signature(func, eval_str=True)
    if "connection" not in signature.parameters:
        raise TypeError(f"{func.__name__} needs a `connection` parameter")
    own = [p for p in signature.parameters.values() if p.name != "connection"]
    clash = _OPTION_NAMES.intersection(p.name for p in own)
    if clash:
        raise TypeError(f"{func.__name__} has parameters named like connection options: "
                        f"{', '.join(sorted(clash))}")

    @functools.wraps(func)
    def command(**kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in _OPTION_NAMES if name in kwargs}
        connection = _gather(values)
        with reported_errors(debug=connection.debug):
            return func(**kwargs, connection=connection)

    command.__signature__ = signature.replace(parameters=own + _OPTION_PARAMETERS)
    return command


def make_client(connection: Connection, **options: Any) -> NomadClient:
    """A `NomadClient` built from what the user typed: the typed values are resolved with
    `origin="flag"`, so each one wins over its NOMAD_* variable and the messages name the
    flag; everything not typed comes from the variables, then the defaults. The resolved
    settings, colour included, are the client's `settings`.

    `options` go to `NomadClient.from_settings` as they are (such as `timeout`). Raises
    `ConfigError` for settings that cannot work; `reported_errors` prints it plainly.
    """
    from nomadtls.client import NomadClient

    return NomadClient.from_settings(connection.settings(), **options)


def print_error(error: NomadError, file: TextIO | None = None, *, lines: int = MAX_LINES
                ) -> None:
    """Print `error` as the CLI shows every failure: `Error: <message>`, then its hint (what
    to change) from a line of its own when it has one. Never a traceback; the library keeps
    secrets out of both texts.

    Both are wrapped to the terminal (see `_width`), continuation lines indented two spaces,
    in at most `lines` lines (never fewer than one for each).
    """
    out = file if file is not None else sys.stderr
    parts = [f"Error: {_one_line(error.message)}"]
    if error.hint:
        hint = _one_line(error.hint)
        parts.append(hint[:1].upper() + hint[1:])
    _print(parts, lines, out)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _print(parts: list[str], lines: int, out: TextIO) -> int:
    """Print `parts` wrapped by `_fit` to the width of `out`; returns the lines printed."""
    fitted = _fit(parts, _width(out), lines)
    for line in fitted:
        print(line, file=out)
    return len(fitted)


def _width(stream: TextIO) -> int:
    """The columns to wrap at: COLUMNS, else the terminal's width, else 100 for output that
    goes to no terminal; never fewer than 60, never more than 100, the widest that reads
    well."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit():
        width = int(columns)
    else:
        try:
            width = os.get_terminal_size(stream.fileno()).columns if stream.isatty() else 100
        except (AttributeError, OSError, ValueError):  # a stream without a descriptor
            width = 100
    return max(60, min(width, 100))


def _fit(parts: list[str], width: int, lines: int) -> list[str]:
    """Each part wrapped at `width`, in `lines` lines at most: while there are more, the part
    that takes the most lines loses its last break, since a long line is better than a lost
    word. Words are never split, so that a path or a URL stays whole."""
    wrapped = [textwrap.wrap(part, width, subsequent_indent="  ", break_long_words=False,
                             break_on_hyphens=False) or [""] for part in parts]
    while sum(map(len, wrapped)) > lines:
        longest = max(wrapped, key=len)
        if len(longest) == 1:
            break
        longest[-2:] = [f"{longest[-2]} {longest[-1].lstrip()}"]
    return [line for part in wrapped for line in part]


@contextmanager
def reported_errors(debug: bool = False) -> Iterator[None]:
    """Run a command body so that whatever goes wrong reaches the user as plain lines.

    A `NomadError` is printed by `print_error`; any other exception as one line naming it
    as unexpected. Both end the command with exit 1, and with `debug` the traceback comes
    first. Typer's own exits and usage errors pass through. Warnings (such as the library's
    NomadWarning when verification is skipped) each become a `Warning:` line on stderr, two
    at most; together with the error that follows, stderr holds at most MAX_LINES lines.
    """
    printed = 0

    def show_warning(message: Any, category: type, filename: str, lineno: int,
                     file: TextIO | None = None, line: str | None = None) -> None:
        nonlocal printed
        printed += _print([f"Warning: {_one_line(str(message))}"], 2, sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show_warning
        try:
            yield
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except NomadError as error:
            if debug:
                traceback.print_exc()
            print_error(error, lines=MAX_LINES - printed)
            raise typer.Exit(1) from None
        except Exception as error:  # the last line of defence: no traceback unless asked
            if debug:
                traceback.print_exc()
            print(f"Error: unexpected {type(error).__name__}: {_one_line(str(error))}",
                  file=sys.stderr)
            if not debug:
                print("Run again with -debug to see where it happened.", file=sys.stderr)
            raise typer.Exit(1) from None
