"""Hydra composition of ``conf/`` into ``params.yaml``, the same way ``dvc exp run`` does it.

``dvc repro`` does not compose; it reads the committed ``params.yaml``. ``tabrepro params`` (``make params``)
rewrites it from ``conf/`` with DVC's own composer, and a test asserts the two are equal. A bad override (an unknown
group option, a key that does not exist, a syntax error) or a missing config folder is a ``ConfigError`` carrying
Hydra's own explanation (it lists a group's options), not a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tabrepro.errors import ConfigError

CONFIG_NAME = "config"


def compose_config(conf_dir: str | Path = "conf", overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Compose ``conf_dir/config.yaml`` with Hydra ``overrides`` into a plain dict."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with _hydra_errors(conf_dir, overrides), initialize_config_dir(str(Path(conf_dir).resolve()), version_base=None):
        cfg = compose(config_name=CONFIG_NAME, overrides=list(overrides))
    OmegaConf.resolve(cfg)
    return OmegaConf.to_container(cfg)  # type: ignore[return-value]


def write_params(
    output: str | Path = "params.yaml", conf_dir: str | Path = "conf", overrides: Sequence[str] = ()
) -> None:
    """Compose and write ``output`` exactly as ``dvc exp run`` would (DVC's own ``compose_and_dump``)."""
    from dvc.utils.hydra import compose_and_dump

    with _hydra_errors(conf_dir, overrides):
        compose_and_dump(
            Path(output),
            str(Path(conf_dir).resolve()),
            None,
            CONFIG_NAME,
            str(Path(conf_dir).parent),
            list(overrides),
        )


@contextmanager
def _hydra_errors(conf_dir: str | Path, overrides: Sequence[str]) -> Iterator[None]:
    """Hydra's composition errors as a ConfigError naming the folder and the overrides (search path left out)."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        yield
    except (HydraException, OmegaConfBaseException) as exc:
        detail = str(exc).split("\nConfig search path:")[0].strip().replace("\t", "  ")
        asked = f" with overrides {list(overrides)}" if overrides else ""
        raise ConfigError(f"cannot compose {Path(conf_dir) / CONFIG_NAME}.yaml{asked}:\n{detail}") from None
