"""The one secret mask (``tabrepro.errors.mask_secrets``): passwords holding ``@ : / % #``, in the userinfo or the
query string, inside reprs, YAML and log lines, cut short or whole."""

from __future__ import annotations

import logging
import sys

import pytest

from tabrepro.config.params import TuneParams
from tabrepro.errors import MASK, ConfigError, MaskingFormatter, mask_secrets, mask_url, parse_section

PASSWORDS = ["s3cretPW", "p@s3cretPW", "pa:ss", "a/b/c", "pc%40t", "h#sh", "x@y:z/w%#q", "@@", "::"]


def _urls(password: str) -> list[str]:
    return [
        f"postgresql://optuna:{password}@127.0.0.1:5432/optuna",
        f"postgresql+psycopg://optuna:{password}@db.example/optuna?sslmode=require",
        f"postgresql://optuna@db:5432/optuna?password={password}",
        f"postgresql://optuna@db:5432/optuna?sslmode=require&sslpassword={password}&connect_timeout=3",
    ]


@pytest.mark.parametrize("password", PASSWORDS)
def test_no_piece_of_a_password_survives_in_any_setting(password):
    for url in _urls(password):
        settings = [url, repr(url), repr({"storage": url, "grace_period": 5}), f"storage: {url}", f"got {url!r}."]
        for text in settings:
            masked = mask_secrets(text)
            assert password not in masked and MASK in masked, (text, masked)
            assert password.strip("@:") == "" or password.strip("@:") not in masked, (text, masked)


def test_what_is_not_a_secret_is_kept():
    assert (
        mask_url("postgresql://optuna:x@y@db.example:5432/optuna") == "postgresql://optuna:***@db.example:5432/optuna"
    )
    kept = "sqlite:///study@2.db; postgresql://optuna@db:5432/optuna?sslmode=require; boolean token: 'Yes'"
    assert mask_secrets(kept) == kept
    assert mask_secrets("{'password': 'a b', 'user': 'optuna'}") == "{'password': '***', 'user': 'optuna'}"
    assert mask_secrets("password: hunter2\nuser: optuna") == "password: ***\nuser: optuna"


def test_a_section_error_shows_the_section_masked_before_it_is_cut_short():
    raw = {"storage": "postgresql://optuna:s3cretPW@db:5432/optuna", "n_trials": 5, "grace_period": 5}
    with pytest.raises(ConfigError) as err:
        parse_section(TuneParams, raw, where="tune")
    assert "s3cret" not in str(err.value) and "(got {'storage': 'postgresql://optuna:***@db:5432/optuna'" in str(
        err.value
    )
    long_password = "s3cret" + "x" * 80  # the cut falls inside the password: still masked
    raw["storage"] = f"postgresql://optuna:{long_password}@db:5432/optuna"
    with pytest.raises(ConfigError) as err:
        parse_section(TuneParams, raw, where="tune")
    assert "s3cret" not in str(err.value)


def test_log_lines_and_tracebacks_are_masked():
    formatter = MaskingFormatter("%(message)s")
    try:
        raise RuntimeError("cannot connect to postgresql://optuna:p@ss@db/optuna")
    except RuntimeError:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "storage %s", ("sqlite://u:pw@h/x",), sys.exc_info()
        )
    text = formatter.format(record)
    assert "p@ss" not in text and ":pw@" not in text and "RuntimeError" in text
