"""`tabrepro contract draft` writes the contract and the data set's params naming it, which load_params resolves."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tabrepro.cli import main
from tabrepro.config.dataset import resolve_data
from tabrepro.contract.spec import load_contract

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> int:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    return int(done.value.code)


def test_draft_writes_the_contract_and_the_reference_that_names_it(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "data/raw").mkdir(parents=True)
    shutil.copy(REPO / "data/raw/penguins.csv", tmp_path / "data/raw/penguins.csv")
    monkeypatch.chdir(tmp_path)
    assert _cli("contract", "draft", "data/raw/penguins.csv", "--target", "species") == 0
    reference = yaml.safe_load((tmp_path / "conf/data/penguins.yaml").read_text(encoding="utf-8"))
    assert reference == {
        "name": "penguins",
        "task": "multiclass",
        "source": "data/raw/penguins.csv",
        "contract": "conf/contracts/penguins.yaml",
    }
    contract = load_contract(resolve_data(reference, root=tmp_path))
    assert contract.target.classes == ("Adelie", "Chinstrap", "Gentoo")
    # neither file is overwritten without --force
    before = (tmp_path / "conf/contracts/penguins.yaml").read_bytes()
    (tmp_path / "conf/contracts/penguins.yaml").unlink()
    assert _cli("contract", "draft", "data/raw/penguins.csv", "--target", "species") == 2
    assert not (tmp_path / "conf/contracts/penguins.yaml").exists()
    assert _cli("contract", "draft", "data/raw/penguins.csv", "--target", "species", "--force") == 0
    assert (tmp_path / "conf/contracts/penguins.yaml").read_bytes() == before
