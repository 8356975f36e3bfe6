"""plusls.common.jsonl: the one reader of jsonl files (training corpus, benchmark files)."""
from __future__ import annotations

import gzip
import json

import pytest

from plusls.common.errors import PluslsError
from plusls.common.jsonl import JsonlError, read_jsonl

ROWS = [{"task_id": "a/0", "prompt": "def f():"}, {"task_id": "a/1", "prompt": "déf g():"}]


def test_reads_plain_and_gzip_files_alike_skipping_blank_lines(tmp_path):
    text = json.dumps(ROWS[0]) + "\n\n" + json.dumps(ROWS[1], ensure_ascii=False) + "\n   \n"
    plain = tmp_path / "rows.jsonl"
    plain.write_text(text, encoding="utf-8")
    packed = tmp_path / "rows.jsonl.gz"
    packed.write_bytes(gzip.compress(text.encode("utf-8")))
    assert read_jsonl(plain) == ROWS
    assert read_jsonl(str(packed)) == ROWS


def test_a_bad_line_names_the_file_and_the_line(tmp_path):
    path = tmp_path / "problems.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n\n{not json\n" + json.dumps(ROWS[1]) + "\n")
    with pytest.raises(JsonlError, match=rf"cannot read {path} \(line 3\)") as caught:
        read_jsonl(path)
    # The CLI reports PluslsError without a traceback; callers that expect json's ValueError still catch it.
    assert isinstance(caught.value, PluslsError) and isinstance(caught.value, ValueError)


def test_a_missing_or_corrupt_file_is_a_clear_error(tmp_path):
    with pytest.raises(JsonlError, match=rf"cannot read {tmp_path / 'nope.jsonl'}: .*No such file"):
        read_jsonl(tmp_path / "nope.jsonl")
    fake = tmp_path / "rows.jsonl.gz"
    fake.write_text(json.dumps(ROWS[0]) + "\n")  # named .gz, but plain text
    with pytest.raises(JsonlError, match=rf"cannot read {fake}"):
        read_jsonl(fake)
