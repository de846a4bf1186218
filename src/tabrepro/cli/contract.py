"""``tabrepro contract draft``: a data contract drafted from a raw table, for a human to review."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from tabrepro.cli.help import EXIT_UNEXPECTED_LINE, add_command
from tabrepro.errors import ConfigError
from tabrepro.io.staging import check_output_path

if TYPE_CHECKING:
    from tabrepro.cli.help import Commands

log = logging.getLogger(__name__)

_CONTRACT_DRAFT_EPILOG = f"""\
writes a starting point for conf/contracts/<name>.yaml: each column's type, levels, observed range (rounded outward),
boolean and missing-value tokens, the id candidates, the columns it leaves out and why, and a "DECIDE:" comment on
every column the data cannot settle. The target's task is --task, binary with --positive, or proposed from the
column (a "DECIDE:" line when unsure); multiclass classes are drafted sorted. Review it before use. Without
--output it also writes conf/data/<name>.yaml, the data set's params (name, task, source, the contract's path)
that `dvc exp run -S data=<name>` picks.

exit status: 0 written; 2 bad input, nothing written: an unreadable or empty table, a --target that is not a
column or does not fit the task (binary: exactly two labels; multiclass: three or more; regression: numbers), a
--positive that is not one of them, an --output that exists (without --force) or cannot be written;
{EXIT_UNEXPECTED_LINE}
"""


def _cmd_contract_draft(args: argparse.Namespace) -> int:
    """Draft a data contract from a raw table and write it, refusing to overwrite one unless --force."""
    from tabrepro.config.dataset import render_reference
    from tabrepro.contract.draft import check_name, default_name, draft_contract
    from tabrepro.contract.draft_yaml import render_draft
    from tabrepro.io.raw import read_raw
    from tabrepro.io.staging import OutputPathError

    name = check_name(args.name) if args.name else default_name(str(args.table))
    output = check_output_path(args.output or Path("conf/contracts") / f"{name}.yaml", option="--output")
    reference = None if args.output else check_output_path(Path("conf/data") / f"{name}.yaml", option="--name")
    for path in (output, reference):
        if path is not None and path.exists() and not args.force:
            raise OutputPathError(f"{path}: exists; pass --force to overwrite it")
    fmt = {".csv": "csv", ".parquet": "parquet"}.get(args.table.suffix.lower())
    if fmt is None:
        raise ConfigError(f"{args.table}: expected a .csv or .parquet file")
    raw = read_raw(args.table, fmt=fmt)
    source = args.table.as_posix()
    draft = draft_contract(
        raw, target=args.target, positive=args.positive, task=args.task, name=name, source=source, fmt=fmt
    )
    texts = {output: render_draft(draft)}
    if reference is not None:
        task = str(draft.target.get("task", "binary"))
        texts[reference] = render_reference(name=name, task=task, source=source, contract=output.as_posix())
    _write_all(texts)
    log.info(
        "wrote %s: %d features, %d left out; review its DECIDE comments, then `dvc exp run -S data=%s`%s",
        " and ".join(str(p) for p in texts),
        len(draft.features),
        len(draft.ignored),
        name,
        "" if reference else f" once conf/data/{name}.yaml names it (name, task, source, contract: {output})",
    )
    return 0


def _write_all(texts: dict[Path, str]) -> None:
    """Write every file, or none (staged together)."""
    from tabrepro.io.staging import staged_outputs

    for path in texts:
        path.parent.mkdir(parents=True, exist_ok=True)
    with staged_outputs(*texts) as staged:
        for target, text in zip(staged, texts.values(), strict=True):
            target.write_text(text, encoding="utf-8")


def add_contract_parser(commands: Commands) -> None:
    contract = commands.add_parser("contract", help="data contracts (conf/contracts/<name>.yaml)")
    draft = add_command(
        contract.add_subparsers(dest="contract_command", required=True),
        "draft",
        help="draft a data contract from a raw table, for a human to review",
        epilog=_CONTRACT_DRAFT_EPILOG,
    )
    draft.add_argument("table", type=Path, help="raw table (.csv or .parquet), e.g. data/raw/my_table.csv")
    draft.add_argument("--target", required=True, help="the target column")
    draft.add_argument(
        "--positive", help="a binary target's positive label, as written in the data (implies --task binary)"
    )
    draft.add_argument(
        "--task",
        choices=("binary", "multiclass", "regression"),
        help="the target's task (default: proposed from the column: many distinct numbers regression, two labels "
        "binary, 3 to 20 labels multiclass)",
    )
    draft.add_argument("--name", help="contract name (default: the file's stem)")
    draft.add_argument(
        "--output",
        type=Path,
        help="contract file to write (default: conf/contracts/<name>.yaml, and conf/data/<name>.yaml naming it)",
    )
    draft.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    draft.set_defaults(func=_cmd_contract_draft)
