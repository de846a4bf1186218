"""The one CSV rule (``tabrepro.io.csv_rules``): how rows are counted against lines, and the scan that names the
first physical line breaking it."""

from __future__ import annotations

import pytest

from tabrepro.errors import DataError
from tabrepro.io.csv_rules import count_rows, locate_breach, read_header

HEADER = "id,age,plan\n"


@pytest.mark.parametrize(
    ("text", "rows"),
    [
        ("id,age\n1,2\n3,4\n", 2),
        ("id,age\n1,2\n3,4", 2),  # no newline at the end
        ("id,age\r\n1,2\r\n3,4\r\n", 2),
        ("id,age\n1,2\n3,4\n\n\r\n\n", 2),  # blank lines at the end are not rows
        ("id,age\n", 0),
        ("", 0),
    ],
)
def test_rows_are_the_lines_after_the_header(tmp_path, text, rows):
    path = tmp_path / "t.csv"
    path.write_bytes(text.encode())
    assert count_rows(path) == rows


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("1,30,pro\n\n2,40,basic\n", "line 3 is empty"),
        ('1,30,pro\n2,"4\n0",basic\n3,50,pro\n', "line 3, column 'age': a quoted value runs over onto line 4"),
        ("1,30,pro\n2,40\n", "line 3 has 2 fields where the header (line 1) has 3"),
        ("1,30,pro,x\n", "line 2 has 4 fields where the header (line 1) has 3"),
        ("1,30," + "p" * 131_073 + "\n", "line 2, column 'plan': a value of 131,073 characters"),
        ("1,30," + "p" * 600_000 + "\n", "line 2 is longer than 524,288 bytes"),
        ("1,30,pro\n2,40,caf\xe9\n", "not valid UTF-8 at line 3"),
    ],
)
def test_the_first_breach_is_named_by_its_physical_line(tmp_path, body, message):
    path = tmp_path / "t.csv"
    path.write_bytes((HEADER + body).encode("latin-1" if "\xe9" in body else "utf-8"))
    error = locate_breach(path)
    assert error is not None and message in str(error), error


def test_a_file_that_keeps_the_rule_has_no_breach(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(HEADER + '1,30,"pro, annual"\n2,,basic\n\n\n')
    assert locate_breach(path) is None and count_rows(path) == 2


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("id,age,id\n", "line 1 (the header): repeated column names: 'id' in columns 1, 3"),
        ('id,"a\nge"\n', "line 1 (the header), column 2: a quoted value runs over onto line 2"),
        ("", "the file is empty"),
        ("\nid,age\n", "line 1 is empty; the header (the column names) must be the first line"),
    ],
)
def test_a_header_that_breaks_the_rule(tmp_path, header, message):
    path = tmp_path / "t.csv"
    path.write_text(header + "1,2,3\n" if header else "")
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_header(path)


def test_a_byte_order_mark_is_not_part_of_the_first_name(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"\xef\xbb\xbfid,age\n1,2\n")
    assert read_header(path) == ["id", "age"]
