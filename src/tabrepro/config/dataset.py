"""The ``data`` params section: a reference to the data set's contract file, resolved into the contract.

``conf/data/<name>.yaml`` (the Hydra group that ``dvc exp run -S data=<name>`` picks) holds only the data set's
``name``, ``task``, ``source`` (the raw table, a dependency in ``dvc.yaml``) and ``contract``, the path of its contract
(``conf/contracts/<name>.yaml``). The contract's columns stay out of ``params.yaml``, so ``dvc exp show`` has four
``data.*`` columns instead of one per declared feature, and the contract file is a plain ``dvc.yaml`` dependency of
the stages that read it. ``load_params`` replaces the reference by the contract mapping, so stages read
``params["data"]`` as before. A section without ``contract`` is an inline contract (tests build those).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tabrepro.contract.spec import load_contract
from tabrepro.errors import ConfigError

REFERENCE_KEYS = ("name", "task", "source", "contract")


def is_reference(section: Any) -> bool:
    """Whether a ``data`` section names a contract file (rather than holding the contract inline)."""
    return isinstance(section, dict) and "contract" in section


def resolve_data(section: Any, *, root: Path, where: str = "params.yaml: data") -> Any:
    """The contract mapping that ``section`` refers to (read from ``root / section["contract"]``), checked to agree
    with the reference's name, task and source; ``section`` itself when it is not a reference."""
    if not is_reference(section):
        return section
    unknown = sorted(set(section) - set(REFERENCE_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; a data set reference has {list(REFERENCE_KEYS)}")
    path = root / str(section["contract"])
    contract = _read_contract(path, where=f"{where}.contract")
    declared = {
        "name": contract.get("name"),
        "task": (contract.get("target") or {}).get("task", "binary"),
        "source": contract.get("source"),
    }
    wrong = [f"{k} {section.get(k)!r}, the contract {v!r}" for k, v in declared.items() if section.get(k) != v]
    if wrong:
        raise ConfigError(f"{where}: disagrees with {path} ({'; '.join(wrong)}); make them agree")
    load_contract(contract, where=f"{section['contract']}: data")  # its own errors name the file, not params.yaml
    return contract


def _read_contract(path: Path, *, where: str) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{where}: contract file {path} not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{where}: cannot read the contract {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: {path} is not a mapping (a data contract), got {type(raw).__name__}")
    return raw


def render_reference(*, name: str, task: str, source: str, contract: str) -> str:
    """The text of ``conf/data/<name>.yaml``: the data set's params, naming its contract file."""
    return (
        f"# The data set {name} (`dvc exp run -S data={name}`). Its contract is {contract}:\n"
        "# a file dependency of the stages that read it, not params. Only these keys are params (and `dvc exp show`\n"
        "# columns); tabrepro refuses them when they disagree with the contract.\n"
        f"name: {name}\ntask: {task}\nsource: {source}\ncontract: {contract}\n"
    )
