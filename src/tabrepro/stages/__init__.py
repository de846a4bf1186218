"""Pipeline stages, the top layer: each module is a thin shell, ``main()`` (argv, logging, params) -> ``run()``
(I/O) -> pure cores in the subsystems. Nothing imports a stage module, and stage modules never import each other.

``run_stage`` is the shared shell: it parses ``--params``, configures logging once and runs the stage through
``errors.exit_code_of`` (the mapping ``tabrepro ...`` uses too): the errors that describe bad input (every
``TabreproError``: params, contract, data, model files, parity, gate) become a one-paragraph message and exit
status 2, so that ``dvc repro`` stops with the reason instead of a traceback. Anything else is a bug or a fault of
the machine: logged with its traceback, exit status 3.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from tabrepro.config.params import load_params
from tabrepro.errors import configure_logging, exit_code_of

log = logging.getLogger(__name__)


def run_stage(name: str, body: Callable[[dict[str, Any]], None], argv: Sequence[str] | None = None) -> None:
    """Run one stage's ``body(params)`` with the project's logging and error handling."""
    parser = argparse.ArgumentParser(
        prog=f"tabrepro.stages.{name}",
        description=f"DVC stage '{name}'",
        epilog="exit status: 0 done, 2 bad input (params, contract, data, files: the message names it; no output"
        " is changed), 3 an unexpected failure (logged with its traceback; no output is changed)",
    )
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    args = parser.parse_args(argv)
    configure_logging(force=True)
    code = exit_code_of(lambda: body(load_params(args.params)), what=f"stage {name}", log=log, unchanged=True)
    if code:
        sys.exit(code)
