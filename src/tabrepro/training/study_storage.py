"""Where Optuna studies live: a journal file (one process, the default) or a database that workers share.

A database URL (``tune.storage``, e.g. ``postgresql+psycopg://optuna@db.example:5432/optuna``) never carries a
password: params.yaml and dvc.lock are committed, so one there would leak. The driver (psycopg 3, i.e. libpq) reads
it from ``PGPASSWORD`` or a ``~/.pgpass`` / ``PGPASSFILE`` file. ``postgresql://`` means psycopg 3, the one
PostgreSQL driver pinned. URLs are masked (``***``) wherever they are printed.

Faults, for database storage:
- a worker that dies mid-trial stops its heartbeat; once the heartbeat is older than ``tune.grace_period`` the
  trial is failed (by the next process that starts a trial, or that waits in ``settle_trials``) and re-queued with
  the same params, up to ``tune.trial_retries`` times, so the study still reaches ``tune.n_trials`` finished trials;
- the database going away mid-search raises ``StudyStorageError`` (exit 2, the message names the database and the
  study); what finished is committed, and a rerun joins the study and runs only the trials still missing.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import optuna
import sqlalchemy
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.trial import TrialState

from tabrepro.config.params import TuneParams
from tabrepro.errors import ConfigError, TabreproError, mask_url

log = logging.getLogger(__name__)

_POLL_S = 0.5
_CONNECT_TIMEOUT_S = 10
_OPEN_ATTEMPTS = 3
_SLACK_S = 60.0  # how much longer than expected a trial without heartbeat is waited for


class StudyStorageError(TabreproError):
    """The study's database failed mid-search (unreachable, stopped, connection lost)."""


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (the project's one mask, ``tabrepro.errors.mask_url``)."""
    return mask_url(url)


def database_url(storage: str) -> str:
    """The SQLAlchemy URL to open: checked for a password (refused), ``postgresql://`` mapped to psycopg 3."""
    where = "params.yaml: tune.storage"
    try:
        url = sqlalchemy.engine.make_url(storage)
    except Exception:
        raise ConfigError(f"{where}: {redact_url(storage)!r} is not a database URL (e.g. postgresql+psycopg://"
                          "user@host:5432/db, sqlite:///study.db)") from None  # fmt: skip
    if url.password is not None or "password" in url.query:
        raise ConfigError(
            f"{where}: {redact_url(storage)!r} carries a password; params.yaml and dvc.lock are committed, so it is "
            "refused. Drop it from the URL and give it to the driver in PGPASSWORD or a ~/.pgpass (PGPASSFILE) file."
        )
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


class _DatabaseStorage(optuna.storages.RDBStorage):
    """RDBStorage whose heartbeat thread logs a failed beat instead of dying with a traceback; the main thread
    meets the same fault at its next call and stops the search with ``StudyStorageError``."""

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            super().record_heartbeat(trial_id)
        except Exception as exc:
            log.warning("heartbeat of trial id %d not recorded: %s", trial_id, _root_message(exc))


def open_storage(tune: TuneParams, journal_path: str) -> optuna.storages.BaseStorage:
    """The study's storage: a journal file (default) or the database in ``tune.storage``, with heartbeats."""
    if tune.storage is None:
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(journal_path))
    url = database_url(tune.storage)
    engine_kwargs = {}
    if url.startswith("postgresql"):  # notice a dropped connection before using it; do not hang on a dead host
        engine_kwargs = {"pool_pre_ping": True, "connect_args": {"connect_timeout": _CONNECT_TIMEOUT_S}}
    for attempt in range(_OPEN_ATTEMPTS):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return _DatabaseStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=tune.heartbeat_interval,
                    grace_period=tune.grace_period,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=tune.trial_retries),
                )
        except Exception as exc:  # the driver's error types vary; all mean "cannot open"
            if _lost_schema_race(exc) and attempt + 1 < _OPEN_ATTEMPTS:
                continue
            raise ConfigError(
                f"params.yaml: tune.storage: cannot open {redact_url(tune.storage)!r}: {_root_message(exc)}"
            ) from None
    raise AssertionError("unreachable")


def _lost_schema_race(exc: BaseException) -> bool:
    """Processes opening an empty database at once race to create Optuna's tables; the loser retries (the tables
    then exist)."""
    return any(isinstance(e, sqlalchemy.exc.IntegrityError) for e in _chain(exc))


def settle_trials(study: optuna.Study) -> None:
    """Wait until no trial of a shared study is RUNNING: live workers' trials finish; a dead worker's trial is
    failed once its heartbeat is older than the grace period (and re-queued). Then the best trial is the best of
    every trial that finished. A journal-file study has one process and nothing to wait for.

    A trial with no heartbeat at all (its worker died in the instant between creating it and its first beat, or
    a client without heartbeats runs it) is never failed by Optuna: it is waited for no longer than
    ``_give_up_after`` and then left out, with a warning naming it."""
    storage = study._storage
    if not is_heartbeat_enabled(storage):
        return
    first_seen: dict[int, float] = {}  # trial number -> when it was first seen running
    given_up: set[int] = set()
    quiet, last_log = 0, time.monotonic()
    while quiet < 2:  # two empty looks in a row: a trial another process was just starting is seen
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        now, trials = time.monotonic(), study.get_trials(deepcopy=False)
        running = [t.number for t in trials if t.state == TrialState.RUNNING and t.number not in given_up]
        for number in running:
            first_seen.setdefault(number, now)
            if now - first_seen[number] > _give_up_after(storage, trials):
                log.warning("%s: trial %d has run too long without failing; not waited for", study.study_name, number)
                given_up.add(number)
        running = [n for n in running if n not in given_up]
        quiet = quiet + 1 if not running else 0
        if running and now - last_log > 30:
            log.info("%s: waiting for running trial(s) %s", study.study_name, running)
            last_log = now
        time.sleep(_POLL_S)


def _give_up_after(storage: optuna.storages.BaseStorage, trials: list[optuna.trial.FrozenTrial]) -> float:
    """Seconds to wait for one running trial: its grace period, plus three times the longest finished trial."""
    durations = [t.duration.total_seconds() for t in trials if t.duration is not None]
    grace = getattr(storage, "grace_period", None) or 2 * getattr(storage, "heartbeat_interval", 0)
    return grace + 3 * max(durations, default=0.0) + _SLACK_S


@contextmanager
def storage_errors(tune: TuneParams, study_name: str) -> Iterator[None]:
    """Turn a database fault inside the block into ``StudyStorageError`` (a clear message, exit 2)."""
    try:
        yield
    except Exception as exc:
        if tune.storage is None or not _from_database(exc):
            raise
        raise StudyStorageError(
            f"params.yaml: tune.storage: the database {redact_url(tune.storage)!r} failed during the search of "
            f"study {study_name!r}: {_root_message(exc)}\nThe trials that finished are committed there; once the "
            "database is back, rerun: the search joins the study and runs only the trials still missing."
        ) from None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _from_database(exc: BaseException) -> bool:
    """Whether a database error is anywhere in ``exc``'s chain (Optuna can re-raise it as another error)."""
    kinds = (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError)
    return any(isinstance(e, kinds) or type(e).__module__.startswith("psycopg") for e in _chain(exc))


def _root_message(exc: BaseException) -> str:
    """The driver's own first line (e.g. 'connection refused'), without SQL or parameters."""
    root = list(_chain(exc))[-1]
    for e in _chain(exc):
        if type(e).__module__.startswith(("psycopg", "sqlite3")):
            root = e
            break
    text = str(root).strip().splitlines()
    return f"{type(root).__name__}: {text[0] if text else ''}"
