"""``errors.exit_code_of``: the one mapping from what an entry point raised to its exit status and message, used
by ``tabrepro ...`` and by every stage's ``main()`` (through ``stages.run_stage``)."""

from __future__ import annotations

import logging

import pytest

from tabrepro.errors import EXIT_BAD_INPUT, EXIT_OK, EXIT_UNEXPECTED, EXIT_VERDICT, ConfigError, exit_code_of
from tabrepro.stages import run_stage

log = logging.getLogger("tabrepro.test")


def _raise(exc: Exception) -> None:
    raise exc


@pytest.mark.parametrize(("returned", "code"), [(None, EXIT_OK), (0, EXIT_OK), (EXIT_VERDICT, EXIT_VERDICT), (11, 11)])
def test_what_the_body_returns_is_the_exit_code(returned: int | None, code: int) -> None:
    assert exit_code_of(lambda: returned, what="tabrepro x", log=log) == code


def test_bad_input_is_2_with_its_message_and_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    code = exit_code_of(lambda: _raise(ConfigError("drift.p_value: must be < 1")), what="tabrepro drift", log=log)
    assert code == EXIT_BAD_INPUT
    (record,) = caplog.records
    assert (record.levelname, record.getMessage(), record.exc_info) == ("ERROR", "drift.p_value: must be < 1", None)


def test_a_stage_says_its_outputs_are_unchanged(caplog: pytest.LogCaptureFixture) -> None:
    code = exit_code_of(lambda: _raise(ConfigError("bad")), what="stage train", log=log, unchanged=True)
    assert code == EXIT_BAD_INPUT
    assert caplog.records[0].getMessage() == "stage train failed; no outputs were changed.\nbad"


def test_anything_else_is_3_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    code = exit_code_of(lambda: _raise(KeyError("oops")), what="tabrepro score", log=log)
    assert code == EXIT_UNEXPECTED
    (record,) = caplog.records
    assert record.getMessage() == "tabrepro score failed unexpectedly (a bug, or a fault of the machine)"
    assert record.exc_info is not None and record.exc_info[0] is KeyError


@pytest.mark.parametrize(("exc", "code"), [(ConfigError("train.x: bad"), EXIT_BAD_INPUT), (RuntimeError("bug"), 3)])
def test_a_stage_exits_through_the_same_mapping(exc: Exception, code: int, tmp_path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("train: {}\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exited:
        run_stage("train", lambda _params: _raise(exc), ["--params", str(params)])
    assert exited.value.code == code


def test_a_stage_that_succeeds_returns_without_exiting(tmp_path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("train: {}\n", encoding="utf-8")
    seen = []
    run_stage("train", seen.append, ["--params", str(params)])
    assert seen == [{"train": {}}]
