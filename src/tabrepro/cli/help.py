"""What every ``tabrepro`` command's help shares: the line on exit status 3, and how a command is added."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

EXIT_UNEXPECTED_LINE = "3 an unexpected failure (a bug, or a fault of the machine), with its traceback."

if TYPE_CHECKING:  # argparse's class is generic to type checkers only
    Commands = argparse._SubParsersAction[argparse.ArgumentParser]


def add_command(
    commands: Commands, name: str, *, help: str, epilog: str, description: str | None = None
) -> argparse.ArgumentParser:
    """A subcommand whose epilog (its exit statuses) and description are printed as written."""
    return commands.add_parser(
        name, help=help, description=description, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )
