"""CDNOW loaders: errors name the file's own line numbers and bytes; a byte-order mark is accepted."""

from __future__ import annotations

import pytest

from recsys.data.cdnow import CdnowFormatError, load_cdnow_summary, load_cdnow_transactions

_HEADER = "ID,x,t_x,T,zbar\n"


def test_summary_errors_count_blank_lines_as_file_lines(tmp_path):
    path = tmp_path / "summary.csv"
    path.write_text(_HEADER + "7,3,21.5,33.0,17.4\n\n  \n9,1,x,33.0,8.6\n")
    with pytest.raises(CdnowFormatError, match=r"summary.csv, line 5: t_x='x' is not a number"):
        load_cdnow_summary(path)


def test_summary_range_errors_count_blank_lines_as_file_lines(tmp_path):
    path = tmp_path / "summary.csv"
    path.write_text("\n" + _HEADER + "7,3,21.5,33.0,17.4\n\n9,1,40.0,33.0,8.6\n")
    with pytest.raises(CdnowFormatError, match=r"summary.csv, line 5: recency is negative or exceeds T"):
        load_cdnow_summary(path)


def test_summary_with_a_non_utf8_byte_names_line_and_byte(tmp_path):
    path = tmp_path / "summary.csv"
    path.write_bytes(_HEADER.encode() + b"7,3,21.5,33.0,17.4\n9,1,3\xe9,33.0,8.6\n")
    with pytest.raises(CdnowFormatError, match=r"summary.csv, line 3: byte 0xe9 at byte offset 40"):
        load_cdnow_summary(path)


def test_summary_with_a_byte_order_mark_loads(tmp_path):
    path = tmp_path / "summary.csv"
    path.write_bytes(b"\xef\xbb\xbf" + _HEADER.encode() + b"7,3,21.5,33.0,17.4\n")
    assert load_cdnow_summary(path).index.tolist() == [7]


def test_log_with_a_byte_order_mark_loads(tmp_path):
    path = tmp_path / "purchases.txt"
    path.write_bytes(b"\xef\xbb\xbf00731 19970305 1 13.40\n00732 19970319 2 21.00\n")
    out = load_cdnow_transactions(path)
    assert out["customer_id"].tolist() == ["00731", "00732"]
    assert out["unit_price"].tolist() == [13.40, 10.5]


def test_log_with_a_non_ascii_byte_names_file_line_and_byte(tmp_path):
    path = tmp_path / "purchases.txt"
    path.write_bytes(b"00731 19970305 1 13.40\n00732 19970319 2 2\xc3\xa91.00\n")
    with pytest.raises(CdnowFormatError, match=r"purchases.txt, line 2: byte 0xc3 at byte offset 41 is not ASCII"):
        load_cdnow_transactions(path)
