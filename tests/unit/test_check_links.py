"""The offline link check of `make lint` (tools/check_links.py): planted broken links fail it, good ones pass."""

from __future__ import annotations

from pathlib import Path

import pytest
from tools.check_links import ROOT, anchors, check_file, default_files, links, main, slugify


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        ("The pipeline", "the-pipeline"),
        ("Pull-request report: `tabrepro report` / `make report`", "pull-request-report-tabrepro-report--make-report"),
        ("Training on Dask (`train.engine: dask`, XGBoost only)", "training-on-dask-trainengine-dask-xgboost-only"),
        ("Does tuning pay? (`bench/quality.py`)", "does-tuning-pay-benchqualitypy"),
        ("Remote storage (S3, MinIO)", "remote-storage-s3-minio"),
        ("**Bold** and [a link](x.md)", "bold-and-a-link"),
        ("snake_case_name", "snake_case_name"),
    ],
)
def test_slugify_is_githubs_anchor(heading: str, slug: str):
    assert slugify(heading) == slug


def test_repeated_headings_are_numbered_and_code_blocks_are_not_headings():
    text = '# Title\n## Experiments\n## Experiments\n```bash\n# a comment\n```\n<a id="custom"></a>\n'
    assert anchors(text) == {"title", "experiments", "experiments-1", "custom"}


def _plant(tmp_path: Path, text: str) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other\n## A section\n")
    (tmp_path / "README.md").write_text(text)
    return tmp_path / "README.md"


def test_good_links_pass(tmp_path: Path):
    readme = _plant(
        tmp_path,
        "# Top\n[a](docs/other.md) [b](docs/other.md#a-section) [c](#top) [d](docs/) [web](https://example.org/x)\n"
        "`[not a link](missing.md)`\n```\n[in a block](missing.md)\n```\n[ref]: docs/other.md#other\n",
    )
    assert check_file(readme, root=tmp_path) == []


@pytest.mark.parametrize(
    ("link", "reason"),
    [
        ("[gone](docs/missing.md)", "no such file or folder: docs/missing.md"),
        ("[bad anchor](docs/other.md#no-such-section)", "no heading with the anchor #no-such-section in docs/other.md"),
        ("[here](#nowhere)", "no heading with the anchor #nowhere in README.md"),
        ("[abs](/docs/other.md)", "an absolute path"),
        ("[ref]: docs/gone.md", "no such file or folder: docs/gone.md"),
    ],
)
def test_a_planted_broken_link_is_reported_with_its_line(tmp_path: Path, link: str, reason: str):
    readme = _plant(tmp_path, f"# Top\n\nfine line\n{link}\n")
    [broken] = check_file(readme, root=tmp_path)
    assert broken.where == "README.md:4"
    assert reason in broken.reason


def test_main_exits_1_on_a_broken_link_and_2_on_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    readme = _plant(tmp_path, "# Top\n[gone](nowhere.md)\n")
    assert main([str(readme)]) == 1
    assert "README.md:2: broken link 'nowhere.md'" in capsys.readouterr().out
    assert main([str(tmp_path / "absent.md")]) == 2


def test_the_projects_own_docs_have_no_broken_link():
    files = default_files(ROOT)
    assert {"README.md", "CONTRIBUTING.md", "CHANGELOG.md"} <= {f.name for f in files}
    assert len(files) >= 14  # the README, CONTRIBUTING, CHANGELOG and every docs/*.md
    broken = [b for f in files for b in check_file(f, root=ROOT)]
    assert broken == []


def test_the_readme_stays_a_short_manual_that_links_every_doc():
    """Issue 22's acceptance: a README under 220 lines, and every document of docs/ reachable from it."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) < 220, "the README is a manual's front page: move detail into docs/"
    linked = {target.partition("#")[0] for _, target in links(readme)}
    docs = {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")}
    assert docs - linked == set(), "link each new document from the README's 'Where to go next'"
