"""The study's database URL: no password in params, psycopg 3 for postgresql://, masked wherever printed; database
faults mid-search become one clear error."""

from __future__ import annotations

import socket

import pytest
import sqlalchemy

from tabrepro.config.params import TuneParams
from tabrepro.errors import ConfigError
from tabrepro.training.study_storage import (
    StudyStorageError,
    database_url,
    open_storage,
    redact_url,
    storage_errors,
)

SECRET = "s3cr3t-pw"


@pytest.mark.parametrize(
    "url",
    [f"postgresql+psycopg://optuna:{SECRET}@db:5432/optuna", f"postgresql://optuna@db/optuna?password={SECRET}"],
)
def test_a_password_in_the_url_is_refused_and_not_repeated(url):
    with pytest.raises(ConfigError, match=r"params\.yaml: tune\.storage: .* carries a password") as caught:
        database_url(url)
    assert SECRET not in str(caught.value) and "PGPASSWORD" in str(caught.value)


@pytest.mark.parametrize(
    ("given", "opened"),
    [
        ("postgresql://optuna@db:5432/optuna", "postgresql+psycopg://optuna@db:5432/optuna"),
        ("postgres://optuna@db/optuna", "postgresql+psycopg://optuna@db/optuna"),
        ("postgresql+psycopg://optuna@db/optuna", "postgresql+psycopg://optuna@db/optuna"),
        ("sqlite:///study.db", "sqlite:///study.db"),
    ],
)
def test_postgresql_urls_use_the_pinned_driver(given, opened):
    assert database_url(given) == opened


def test_a_string_that_is_not_a_url_is_refused_by_key():
    with pytest.raises(ConfigError, match=r"tune\.storage: 'not a url' is not a database URL"):
        database_url("not a url")


@pytest.mark.parametrize("url", [f"postgresql+psycopg://optuna:{SECRET}@db/optuna", f"weird://optuna:{SECRET}@db /x y"])
def test_redact_masks_the_password_even_in_a_malformed_url(url):
    masked = redact_url(url)
    assert SECRET not in masked and "optuna:***@db" in masked


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_database_names_the_key_and_the_driver_error():
    tune = TuneParams(n_trials=1, storage=f"postgresql://optuna@127.0.0.1:{_closed_port()}/optuna")
    with pytest.raises(ConfigError, match=r"tune\.storage: cannot open 'postgresql://optuna@127\.0\.0\.1:\d+/optuna'"):
        open_storage(tune, "")


def _fail_inside_optuna() -> None:
    """A driver error re-raised by Optuna as another error (as its trial clean-up does when the database is gone)."""
    try:
        raise sqlalchemy.exc.OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))
    except sqlalchemy.exc.OperationalError:
        raise UnboundLocalError("updated_state") from None  # __context__ still holds the driver's error


def test_a_database_fault_mid_search_becomes_one_clear_error():
    tune = TuneParams(n_trials=1, storage="postgresql+psycopg://optuna@db:5432/optuna")
    with pytest.raises(StudyStorageError) as caught, storage_errors(tune, "telco_churn-xgboost"):
        _fail_inside_optuna()
    message = str(caught.value)
    assert "tune.storage: the database 'postgresql+psycopg://optuna@db:5432/optuna' failed during the search" in message
    assert "study 'telco_churn-xgboost'" in message and "connection refused" in message and "SELECT" not in message


def test_other_errors_and_journal_studies_pass_through():
    database = TuneParams(n_trials=1, storage="sqlite:///x.db")
    with pytest.raises(ZeroDivisionError), storage_errors(database, "s"):
        _ = 1 / 0
    with pytest.raises(UnboundLocalError), storage_errors(TuneParams(n_trials=1), "s"):
        _fail_inside_optuna()
