"""The help screens: plain text, each parameter shown by its name and metavar only.

typer 0.2x (which vendors its own click: there is no `click` package beside it) shows every
parameter's Python type in its help: `--all <bool>` for a flag that takes no value,
`targets... <list[str]>` for the arguments, `<int range>` for `--jobs`. Its rich panels also
read help text as rich markup, so `[platforms.*]` vanished ("every  in fodhash.toml").
fodhash therefore turns rich help off (`rich_markup_mode=None`: click's plain formatter, no
markup) and writes the parameter rows itself from what click has known for years (opts,
flags, metavars, help), so the screens do not change with typer's rendering.
"""

from __future__ import annotations

from typing import Any

import typer.core


def _metavar(param: Any) -> str:
    if param.metavar:
        return str(param.metavar)
    return str(param.name or "").upper()


def record(param: Any) -> tuple[str, str] | None:
    """The (name column, help column) of one parameter; None for a hidden one."""
    if getattr(param, "hidden", False):
        return None
    text = getattr(param, "help", None) or ""
    if param.param_type_name == "argument":
        name = _metavar(param) + ("..." if param.nargs != 1 else "")
        return name, text
    opts = sorted(param.opts, key=lambda o: (o.startswith("--"), o))  # -j, --jobs
    name = ", ".join(opts)
    if param.secondary_opts:
        name += " / " + ", ".join(param.secondary_opts)
    if not param.is_flag and not getattr(param, "count", False):
        name += " " + _metavar(param)
    return name, text


def format_parameters(command: Any, ctx: Any, formatter: Any) -> None:
    arguments: list[tuple[str, str]] = []
    options: list[tuple[str, str]] = []
    for param in command.get_params(ctx):
        row = record(param)
        if row is not None:
            (arguments if param.param_type_name == "argument" else options).append(row)
    if arguments:
        with formatter.section("Arguments"):
            formatter.write_dl(arguments)
    if options:
        with formatter.section("Options"):
            formatter.write_dl(options)


def usage(command: Any, ctx: Any) -> list[str]:
    """The usage line after the program's name: `[OPTIONS] [TARGET]...`, `FILE...`."""
    pieces = [command.options_metavar] if command.options_metavar else []
    for param in command.get_params(ctx):
        if param.param_type_name == "argument":
            name = _metavar(param) + ("..." if param.nargs != 1 else "")
            pieces.append(name if param.required else f"[{name}]")
    return pieces


class Command(typer.core.TyperCommand):
    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return usage(self, ctx)

    def format_options(self, ctx: Any, formatter: Any) -> None:
        format_parameters(self, ctx, formatter)


class Group(typer.core.TyperGroup):
    def format_options(self, ctx: Any, formatter: Any) -> None:
        format_parameters(self, ctx, formatter)
        self.format_commands(ctx, formatter)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """Each command with the first sentence of its help, whole (click cuts it short)."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=1000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


SETTINGS: dict[str, Any] = {"cls": Group, "rich_markup_mode": None}
