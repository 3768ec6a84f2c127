"""The CLI reference (docs/cli.md), generated from the typer app so it cannot drift.

Used three ways:

- as an mkdocs hook (``hooks:`` in mkdocs.yml): ``on_page_markdown`` replaces the marker
  ``<!-- cli-reference -->`` in docs/cli.md with the rendered reference at build time;
- by tests/test_docs.py, which checks that every command and option of the app is rendered;
- from a shell: ``python scripts/cli_reference.py`` prints the Markdown.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

MARKER = "<!-- cli-reference -->"


def _escape(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _type_name(param: Any) -> str:
    ann = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    return getattr(ann, "__name__", None) or str(ann or "")


def _param_row(param: Any) -> str:
    if param.param_type_name == "argument":
        name = f"`{param.name.upper()}`"
        kind = "argument, " + _type_name(param)
    else:
        name = ", ".join(f"`{n}`" for n in [*param.opts, *param.secondary_opts])
        kind = "flag" if param.is_flag or param.count else _type_name(param)
    if param.required:
        default = "required"
    elif param.default is None or callable(param.default) or param.default is False or param.count:
        default = ""
    else:
        default = f"`{param.default}`"
    return f"| {name} | {_escape(kind)} | {default} | {_escape(param.help or '')} |"


def _table(params: list[Any]) -> list[str]:
    shown = [p for p in params if not getattr(p, "hidden", False)]
    if not shown:
        return []
    return ["| name | type | default | meaning |", "|---|---|---|---|", *map(_param_row, shown)]


def commands() -> dict[str, Any]:
    """The click commands of the ``energycore`` app, by name (sorted)."""
    import typer

    from energycore.app.cli import app

    group = typer.main.get_command(app)
    ctx = group.make_context("energycore", [], resilient_parsing=True)
    return {name: group.get_command(ctx, name) for name in sorted(group.list_commands(ctx))}  # type: ignore[attr-defined]


def render() -> str:
    """The reference as Markdown: the global options, then one section per command."""
    import typer

    from energycore.app.cli import app

    group = typer.main.get_command(app)
    lines = [
        "## `energycore`",
        "",
        inspect.cleandoc(group.help or ""),
        "",
        "Global options go before the command (`energycore -q select ...`).",
        "",
        *_table(group.params),
        "",
    ]
    for name, cmd in commands().items():
        ctx = cmd.make_context(name, [], resilient_parsing=True)
        usage = re.sub(
            r"\{(\w+)\}", lambda m: m.group(1).upper(), " ".join(cmd.collect_usage_pieces(ctx))
        )
        lines += [
            f"## `energycore {name}`",
            "",
            "```text",
            f"energycore {name} {usage}",
            "```",
            "",
            inspect.cleandoc(cmd.help or ""),
            "",
            *_table(cmd.params),
            "",
        ]
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    """mkdocs hook: fill the marker of docs/cli.md."""
    if MARKER in markdown:
        return markdown.replace(MARKER, render())
    return markdown


if __name__ == "__main__":
    print(render())
