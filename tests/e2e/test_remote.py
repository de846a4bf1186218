"""Remote storage on S3 against a real S3-compatible server (moto_server, IAM authentication on): `dvc push` and
`dvc pull` across a fresh clone, `dvc exp push` / `dvc exp pull` across two clones, an `s3://` raw source imported
with `dvc import-url`, and the faults: remote unreachable, wrong credentials, missing bucket."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import yaml
from botocore.client import BaseClient

from tests.e2e.conftest import SAMPLE_ROWS, copy_reproduced, env, git
from tests.support.local_serve import free_port

pytestmark = pytest.mark.e2e

BUCKET = "tabrepro-dvc"  # the bucket of the default remote in .dvc/config (s3://tabrepro-dvc/cache)
PREFIX = "cache"
RAW_BUCKET = "tabrepro-raw"
RAW = "data/raw/telco_customer_churn.csv"
REGION = "us-east-1"
DVC_TIMEOUT_S = 300
UP_TO_DATE = "Data and pipelines are up to date."
# Outputs whose content lives in the DVC cache (the others are small reports kept in git).
CACHED_OUTS = {
    "data/prepared",
    "data/features",
    "models/preprocessor.skops",
    "models/reference_stats.json",
    "models/best_params.json",
    "models/tune",
    "models/model",
    "reports/predictions_test.parquet",
    "models/serving",
    "bentos/tabrepro.bento",
}


# --- the server -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Server:
    """A running moto_server that only accepts the credentials of one IAM user."""

    endpoint: str
    access_key_id: str
    secret_access_key: str

    def env(self, **overrides: str) -> dict[str, str]:
        """AWS settings for a subprocess: this user's keys, nothing read from the user's own AWS config."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": "/nonexistent/aws/config",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws/credentials",
            **overrides,
        }

    def client(self) -> BaseClient:
        """An S3 client with this user's keys."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
        )

    def keys(self, bucket: str, prefix: str) -> set[str]:
        """Every object key under ``prefix``, relative to it."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/")
        return {obj["Key"][len(prefix) + 1 :] for page in pages for obj in page.get("Contents", [])}


def _wait_for(endpoint: str, proc: subprocess.Popen, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto_server exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"moto_server did not answer on {endpoint} within {timeout_s} s")


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto_server on a free local port, with the buckets and one IAM user; then IAM authentication is switched on
    (moto's `reset-auth` API sets INITIAL_NO_AUTH_ACTION_COUNT to 0), so any other key is refused as on AWS."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("moto") / "moto_server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for(endpoint, proc)
        setup = {"endpoint_url": endpoint, "region_name": REGION, "aws_access_key_id": "setup"}
        iam = boto3.client("iam", aws_secret_access_key="setup", **setup)
        iam.create_user(UserName="tabrepro-ci")
        key = iam.create_access_key(UserName="tabrepro-ci")["AccessKey"]
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        iam.put_user_policy(UserName="tabrepro-ci", PolicyName="s3", PolicyDocument=json.dumps(policy))
        s3 = boto3.client("s3", aws_secret_access_key="setup", **setup)
        for bucket in (BUCKET, RAW_BUCKET):
            s3.create_bucket(Bucket=bucket)
        request = urllib.request.Request(
            f"{endpoint}/moto-api/reset-auth", data=b"0", method="POST", headers={"Content-Type": "text/plain"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert json.load(answer)["status"] == "ok"
        yield S3Server(endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- dvc and git in the copies ----------------------------------------------------------------------------------


def _dvc(
    cwd: Path, aws: dict[str, str], *args: str, check: bool = True, timeout: int = DVC_TIMEOUT_S
) -> subprocess.CompletedProcess:
    """The real dvc CLI with these AWS settings only (none inherited from the machine running the tests)."""
    proc_env = {k: v for k, v in env().items() if not k.startswith("AWS_")} | aws
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=cwd, env=proc_env, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        pytest.fail(f"dvc {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def _remote_local(repo: Path, option: str, value: str) -> None:
    """Per-clone remote setting in .dvc/config.local (git-ignored), as a user would set their endpoint."""
    _dvc(repo, {}, "remote", "modify", "--local", "storage", option, value)


def _clone(origin: Path, dest: Path, server: S3Server) -> Path:
    git(dest.parent, "clone", "-q", str(origin), dest.name)
    _remote_local(dest, "endpointurl", server.endpoint)
    return dest


@dataclass(frozen=True)
class Published:
    repo: Path  # the reproduced repository, pushed to both remotes
    origin: Path  # its bare git remote


@pytest.fixture(scope="module")
def published(s3_server: S3Server, reproduced: Path, tmp_path_factory: pytest.TempPathFactory) -> Published:
    """A copy of the session's reproduced repository (`dvc repro` done and committed), pushed to a bare git
    `origin`, and its outputs pushed to the default DVC remote."""
    repo = copy_reproduced(reproduced, tmp_path_factory.mktemp("published") / "repo")
    origin = tmp_path_factory.mktemp("origin") / "tabrepro.git"
    git(origin.parent, "init", "-q", "--bare", "-b", "main", origin.name)
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "push", "-q", "origin", "main")
    _remote_local(repo, "endpointurl", s3_server.endpoint)
    pushed = _dvc(repo, s3_server.env(), "push")
    assert "files pushed" in pushed.stdout, pushed.stdout
    return Published(repo, origin)


# --- what a workspace holds -------------------------------------------------------------------------------------


def _file_hash(path: Path, algorithm: str = "sha256") -> str:
    return hashlib.new(algorithm, path.read_bytes()).hexdigest()


def _lock_outs(repo: Path) -> dict[str, str]:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return {o["path"]: o["md5"] for stage in lock["stages"].values() for o in stage.get("outs", [])}


def _digest_outs(repo: Path) -> dict[str, str]:
    """sha256 of every file of every output in dvc.lock, and of dvc.lock itself."""
    found = {"dvc.lock": _file_hash(repo / "dvc.lock")}
    for rel in _lock_outs(repo):
        path = repo / rel
        for f in [path] if path.is_file() else sorted(path.rglob("*")):
            if f.is_file():
                found[str(f.relative_to(repo))] = _file_hash(f)
    return found


NOT_DATA = (".git", ".dvc/tmp", ".dvc/config.local")  # git's own files, dvc's locks and logs, the remote settings


def _digest_tree(repo: Path) -> dict[str, str]:
    """sha256 of every file of the workspace and of the local cache."""
    found = {}
    for f in sorted(repo.rglob("*")):
        rel = f.relative_to(repo).as_posix()
        if f.is_file() and not any(rel == skip or rel.startswith(f"{skip}/") for skip in NOT_DATA):
            found[rel] = _file_hash(f)
    return found


def _cache_objects(repo: Path) -> set[str]:
    """The local cache's objects, as keys relative to the remote's prefix (files/md5/ab/cdef...)."""
    cache = repo / ".dvc" / "cache"
    return {str(f.relative_to(cache)) for f in cache.rglob("*") if f.is_file()}


def _cache_object(repo: Path, md5: str) -> Path:
    return repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]


def _assert_matches_lock(repo: Path) -> set[str]:
    """Every output's md5 in dvc.lock equals the md5 of what is on disk (per file for directories, through the
    directory's listing in the cache). Returns the outputs checked."""
    checked = set()
    for rel, md5 in _lock_outs(repo).items():
        path = repo / rel
        if md5.endswith(".dir"):
            listing = _cache_object(repo, md5)
            if not listing.is_file():  # a directory kept in git (cache: false) has no listing in the cache
                continue
            expected = {entry["relpath"]: entry["md5"] for entry in json.loads(listing.read_text())}
            on_disk = {str(f.relative_to(path)): _file_hash(f, "md5") for f in path.rglob("*") if f.is_file()}
            assert on_disk == expected, rel
        else:
            assert _file_hash(path, "md5") == md5, rel
        checked.add(rel)
    return checked


def _output(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout + proc.stderr


# --- push, clone, pull ------------------------------------------------------------------------------------------


def test_push_then_fresh_clone_pull_restores_every_output(
    published: Published, s3_server: S3Server, tmp_path: Path
) -> None:
    repo = published.repo
    assert ".dvc/config.local" not in git(repo, "ls-files", ".dvc").stdout.split()  # the endpoint stays local
    assert "endpointurl" not in (repo / ".dvc" / "config").read_text()
    local = _cache_objects(repo)
    assert len(local) > 20
    assert local <= s3_server.keys(BUCKET, PREFIX)
    in_sync = _dvc(repo, s3_server.env(), "status", "--cloud")
    assert "Cache and remote 'storage' are in sync." in in_sync.stdout

    clone = _clone(published.origin, tmp_path / "clone", s3_server)
    assert not (clone / "data/prepared").exists()
    assert not (clone / "models/model").exists()
    _dvc(clone, s3_server.env(), "pull")
    assert _assert_matches_lock(clone) >= CACHED_OUTS
    assert _digest_outs(clone) == _digest_outs(repo)

    again = _dvc(clone, s3_server.env(), "repro")
    assert UP_TO_DATE in again.stdout
    assert "Running stage" not in again.stdout


def _another_family(repo: Path) -> str:
    """A model family other than the one ``repo`` trained, so that an experiment with it changes the outputs."""
    trained = json.loads((repo / "models/best_params.json").read_text())["model"]
    return "xgboost" if trained == "logreg" else "logreg"


def test_exp_push_and_pull_carry_an_experiment_across_clones(
    published: Published, s3_server: S3Server, tmp_path: Path
) -> None:
    aws = s3_server.env()
    family = _another_family(published.repo)
    name = f"try-{family}"
    first = _clone(published.origin, tmp_path / "first", s3_server)
    _dvc(first, aws, "pull")
    _dvc(first, aws, "exp", "run", "-n", name, "-S", f"model={family}")
    ran = _digest_outs(first)
    assert ran["dvc.lock"] != _digest_outs(published.repo)["dvc.lock"]
    assert json.loads((first / "models/best_params.json").read_text()) != json.loads(
        (published.repo / "models/best_params.json").read_text()
    )
    pushed = _dvc(first, aws, "exp", "push", "origin", name)
    assert f"Pushed experiment {name} to Git remote 'origin'" in _output(pushed)
    assert "refs/exps/" in git(published.origin, "for-each-ref", "refs/exps").stdout

    second = _clone(published.origin, tmp_path / "second", s3_server)
    assert name not in _dvc(second, aws, "exp", "list").stdout
    _dvc(second, aws, "exp", "pull", "origin", name)
    assert name in _dvc(second, aws, "exp", "list").stdout
    _dvc(second, aws, "exp", "apply", name)  # the second clone never ran `dvc pull`: data from exp pull
    assert _digest_outs(second) == ran
    assert _assert_matches_lock(second) >= CACHED_OUTS
    assert yaml.safe_load((second / "params.yaml").read_text())["model"]["name"] == family


# --- an s3:// raw source -----------------------------------------------------------------------------------------


def _quality_rows(repo: Path) -> int:
    return json.loads((repo / "reports/data_quality.json").read_text())["rows"]["in"]


def test_s3_raw_source_change_is_picked_up_by_update_and_reruns_prepare(
    published: Published, s3_server: S3Server, tmp_path: Path
) -> None:
    # the endpoint from the environment (as for MinIO), so the .dvc file records only the s3:// URL
    aws = s3_server.env(AWS_ENDPOINT_URL_S3=s3_server.endpoint)
    clone = _clone(published.origin, tmp_path / "clone", s3_server)
    _dvc(clone, aws, "pull")
    url = f"s3://{RAW_BUCKET}/telco/telco_customer_churn.csv"
    lines = (clone / RAW).read_bytes().splitlines(keepends=True)
    s3_server.client().put_object(Bucket=RAW_BUCKET, Key="telco/telco_customer_churn.csv", Body=b"".join(lines))

    git(clone, "rm", "-q", "--cached", RAW)  # the file moves from git to DVC
    _dvc(clone, aws, "import-url", "--force", url, RAW)
    record = yaml.safe_load((clone / f"{RAW}.dvc").read_text())
    assert record["deps"][0]["path"] == url
    assert record["frozen"] is True
    unchanged = _dvc(clone, aws, "repro", "prepare")  # same bytes: nothing to re-run
    assert "Stage 'prepare' didn't change, skipping" in unchanged.stdout
    git(clone, "add", "-A")
    git(clone, "commit", "-qm", "raw data from S3")

    # a new version of the object: 43 customers fewer (of the raw sample's)
    s3_server.client().put_object(Bucket=RAW_BUCKET, Key="telco/telco_customer_churn.csv", Body=b"".join(lines[:-43]))
    still = _dvc(clone, aws, "repro", "prepare")  # the import is frozen: no change until `dvc update`
    assert "Stage 'prepare' didn't change, skipping" in still.stdout
    assert _quality_rows(clone) == SAMPLE_ROWS

    updated = _dvc(clone, aws, "update", f"{RAW}.dvc")
    assert f"Importing '{url}' -> '{RAW}'" in updated.stdout
    assert (clone / RAW).read_bytes() == b"".join(lines[:-43])
    rerun = _dvc(clone, aws, "repro", "prepare")
    assert "Running stage 'prepare'" in rerun.stdout
    assert _quality_rows(clone) == SAMPLE_ROWS - 43

    # the imported bytes go to the DVC remote with everything else: a clone does not need the raw bucket
    _dvc(clone, aws, "push")
    raw_md5 = _file_hash(clone / RAW, "md5")
    assert f"files/md5/{raw_md5[:2]}/{raw_md5[2:]}" in s3_server.keys(BUCKET, PREFIX)


# --- faults --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """How to break the remote, the message dvc gives, and how to fix it after a push or after a pull."""

    messages: tuple[str, ...]  # the error names one of these (S3 answers a HEAD request without a body)
    breaks: Callable[[Path, S3Server, str], dict[str, str]]  # changes the clone, returns the env of the failing call
    fix_push: Callable[[Path, S3Server, str], None]
    fix_pull: Callable[[Path, S3Server, str], None]


def _closed_endpoint(repo: Path, server: S3Server, direction: str) -> dict[str, str]:
    _remote_local(repo, "endpointurl", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    # botocore would back off and retry each request up to 5 times (~15 s) before giving up; once is enough here
    return server.env(AWS_MAX_ATTEMPTS="1")


def _restore_endpoint(repo: Path, server: S3Server, direction: str) -> None:
    _remote_local(repo, "endpointurl", server.endpoint)


def _wrong_secret(repo: Path, server: S3Server, direction: str) -> dict[str, str]:
    return server.env(AWS_SECRET_ACCESS_KEY="not-the-secret-key")


def _right_credentials(repo: Path, server: S3Server, direction: str) -> None:
    """Fixed in the environment: the retry runs with the user's real keys."""


def _missing(direction: str) -> str:
    return f"tabrepro-dvc-missing-{direction}"


def _missing_bucket(repo: Path, server: S3Server, direction: str) -> dict[str, str]:
    _remote_local(repo, "url", f"s3://{_missing(direction)}/{PREFIX}")
    return server.env()


def _create_bucket(repo: Path, server: S3Server, direction: str) -> None:
    server.client().create_bucket(Bucket=_missing(direction))


def _right_bucket(repo: Path, server: S3Server, direction: str) -> None:
    _remote_local(repo, "url", f"s3://{BUCKET}/{PREFIX}")


FAULTS = {
    "remote unreachable": Fault(
        ("Could not connect to the endpoint URL",), _closed_endpoint, _restore_endpoint, _restore_endpoint
    ),
    "wrong credentials": Fault(
        ("SignatureDoesNotMatch", "An error occurred (403)"), _wrong_secret, _right_credentials, _right_credentials
    ),
    "missing bucket": Fault(
        ("The specified bucket does not exist", "An error occurred (404)"),
        _missing_bucket,
        _create_bucket,
        _right_bucket,
    ),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_push_fault_fails_clearly_loses_nothing_and_retry_succeeds(
    published: Published, s3_server: S3Server, tmp_path: Path, fault: str
) -> None:
    spec = FAULTS[fault]
    clone = _clone(published.origin, tmp_path / "clone", s3_server)
    _dvc(clone, s3_server.env(), "pull")
    prefix = f"push-{fault.replace(' ', '-')}"  # an empty place on the remote, so the retry has to upload everything
    _remote_local(clone, "url", f"s3://{BUCKET}/{prefix}")
    before = _digest_tree(clone)

    aws = spec.breaks(clone, s3_server, "push")
    failed = _dvc(clone, aws, "push", check=False, timeout=120)
    assert failed.returncode != 0, _output(failed)
    assert "ERROR" in failed.stderr
    assert any(message in _output(failed) for message in spec.messages), _output(failed)
    assert _digest_tree(clone) == before

    spec.fix_push(clone, s3_server, "push")
    retried = _dvc(clone, s3_server.env(), "push")
    assert "files pushed" in retried.stdout
    where = (_missing("push"), PREFIX) if fault == "missing bucket" else (BUCKET, prefix)
    assert _cache_objects(clone) <= s3_server.keys(*where)
    assert _digest_tree(clone) == before


@pytest.mark.parametrize("fault", list(FAULTS))
def test_pull_fault_fails_clearly_loses_nothing_and_retry_succeeds(
    published: Published, s3_server: S3Server, tmp_path: Path, fault: str
) -> None:
    spec = FAULTS[fault]
    clone = _clone(published.origin, tmp_path / "clone", s3_server)
    _dvc(clone, s3_server.env(), "pull", "prepare")  # some data already here: a failed pull must keep it
    assert (clone / "data/prepared").is_dir()
    before = _digest_tree(clone)

    aws = spec.breaks(clone, s3_server, "pull")
    failed = _dvc(clone, aws, "pull", check=False, timeout=120)
    assert failed.returncode != 0, _output(failed)
    assert "ERROR" in failed.stderr
    assert any(message in _output(failed) for message in spec.messages), _output(failed)
    assert _digest_tree(clone) == before
    assert not (clone / "models/model").exists()

    spec.fix_pull(clone, s3_server, "pull")
    _dvc(clone, s3_server.env(), "pull")
    assert _assert_matches_lock(clone) >= CACHED_OUTS
    assert _digest_outs(clone) == _digest_outs(published.repo)
    assert UP_TO_DATE in _dvc(clone, s3_server.env(), "status").stdout
