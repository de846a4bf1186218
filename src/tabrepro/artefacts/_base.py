"""What every artefact model shares: the record base (frozen, unknown keys refused), the constrained number and
digest types, the hashes that seal files, and the one reader that names the file and the key a problem is at."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StringConstraints,
    ValidationError,
)

from tabrepro.errors import TabreproError

R = TypeVar("R", bound=BaseModel)

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Share = Annotated[float, Field(ge=0, le=1)]  # a probability, a rate or a score in [0, 1]
Count = Annotated[int, Field(ge=0)]
Threshold = Annotated[float, Field(ge=0, allow_inf_nan=False)]  # "min_cost" may pick just above the top score


def _worded(true: str, false: str) -> tuple[BeforeValidator, PlainSerializer]:
    """A boolean written as one of two words: `dvc metrics diff` shows a JSON boolean's change as -1 or 1, a word
    as itself. Reading takes the words, and a JSON boolean (files written before the words; `tabrepro report`
    reads the base revision's)."""

    def read(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if value not in (true, false):
            raise ValueError(f"expected {true!r} or {false!r}")
        return value == true

    return BeforeValidator(read), PlainSerializer(
        lambda flag: true if flag else false, return_type=str, when_used="json"
    )


_PASS_FAIL, _YES_NO = _worded("pass", "fail"), _worded("yes", "no")
Verdict = Annotated[StrictBool, _PASS_FAIL[0], _PASS_FAIL[1]]  # a gate's or a check's verdict
YesNo = Annotated[StrictBool, _YES_NO[0], _YES_NO[1]]  # any other boolean of a metrics file


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ArtefactError(TabreproError, ValueError):
    """A file one stage wrote for another is missing, unreadable, truncated, not JSON or not in its layout."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def canonical_json(data: Any) -> bytes:
    """One byte string per JSON value, whatever the key order or spacing of the file it came from."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def read_artefact(path: str | Path, model: type[R], *, error: type[TabreproError] = ArtefactError, hint: str = "") -> R:
    """The JSON file at ``path`` as ``model``; ``error`` naming the file (and the key) when it cannot be.

    ``hint`` says what to run when the file is missing or unusable (e.g. "run the tune stage").
    """
    path, suffix = Path(path), f" ({hint})" if hint else ""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: not found{suffix}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read it: {exc}{suffix}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise error(f"{path}: not valid JSON, truncated or edited? ({exc.msg}: {where}){suffix}") from None
    return validate_artefact(data, model, source=str(path), error=error, hint=hint)


def validate_artefact(
    data: Any, model: type[R], *, source: str, error: type[TabreproError] = ArtefactError, hint: str = ""
) -> R:
    """``data`` (parsed JSON) as ``model``; ``error`` listing every bad key of ``source`` when it is not."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        problems = [_describe(err) for err in errors]
        whole_file = len(errors) == 1 and not errors[0]["loc"]  # seal or schema version: it says what to do
        suffix = f" ({hint})" if hint and not whole_file else ""
        if len(problems) == 1:
            raise error(f"{source}: {problems[0]}{suffix}") from None
        raise error(f"{source}: not in the layout of {model.__name__}{suffix}:\n  " + "\n  ".join(problems)) from None


def _describe(err: Any) -> str:
    loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "missing":
        return f"{loc}: missing (required key)"
    if err["type"] == "extra_forbidden":
        return f"{loc}: unknown key (a typo, or a file from another version?)"
    if not loc:  # a check of the whole file (seal, schema version): its message names the key
        return msg
    got = repr(err.get("input"))
    return f"{loc}: {msg} (got {got if len(got) <= 60 else got[:57] + '...'})"
