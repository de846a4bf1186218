"""Pipeline stages. Each module is a thin shell: ``main()`` (argv, logging, params) -> ``run()`` (I/O) -> pure core.

``run_stage`` is the shared shell: it parses ``--params``, configures logging once and turns the errors that
describe bad input (``ConfigError``, ``DataError``, ``ModelFileError``,
``PackagingError``, ``GateError``) into a one-paragraph message and exit
status 2, so that ``dvc repro`` stops with the reason instead of a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from tabrepro.gate import GateError
from tabrepro.modeling import ModelFileError
from tabrepro.onnx_export import PackagingError
from tabrepro.params import ConfigError, load_params
from tabrepro.validation import DataError

log = logging.getLogger(__name__)


def run_stage(name: str, body: Callable[[dict[str, Any]], None], argv: Sequence[str] | None = None) -> None:
    """Run one stage's ``body(params)`` with the project's logging and error handling."""
    parser = argparse.ArgumentParser(prog=f"tabrepro.stages.{name}", description=f"DVC stage '{name}'")
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    try:
        body(load_params(args.params))
    except (ConfigError, DataError, ModelFileError, PackagingError, GateError) as exc:
        log.error("stage %s failed; no outputs were changed.\n%s", name, exc)
        sys.exit(2)
