"""Hydra composition of ``conf/`` into ``params.yaml``, the same way ``dvc exp run`` does it.

``dvc repro`` does not compose; it reads the committed ``params.yaml``. ``tabrepro params`` (``make params``)
rewrites it from ``conf/`` with DVC's own composer, and a test asserts the two are equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

CONFIG_NAME = "config"


def compose_config(conf_dir: str | Path = "conf", overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Compose ``conf_dir/config.yaml`` with Hydra ``overrides`` into a plain dict."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(str(Path(conf_dir).resolve()), version_base=None):
        cfg = compose(config_name=CONFIG_NAME, overrides=list(overrides))
    OmegaConf.resolve(cfg)
    return OmegaConf.to_container(cfg)  # type: ignore[return-value]


def write_params(
    output: str | Path = "params.yaml", conf_dir: str | Path = "conf", overrides: Sequence[str] = ()
) -> None:
    """Compose and write ``output`` exactly as ``dvc exp run`` would (DVC's own ``compose_and_dump``)."""
    from dvc.utils.hydra import compose_and_dump

    compose_and_dump(
        Path(output),
        str(Path(conf_dir).resolve()),
        None,
        CONFIG_NAME,
        str(Path(conf_dir).parent),
        list(overrides),
    )
