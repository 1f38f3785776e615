"""simtools.persistence: atomic folders, JSON and config checks, safetensors arrays."""

from __future__ import annotations

import numpy as np
import pytest

from simtools.persistence import (
    FormatError,
    load_arrays,
    read_config,
    read_json,
    save_arrays,
    write_json,
)


# -- JSON -------------------------------------------------------------------------------------
def test_write_and_read_json_round_trip_unicode(tmp_path):
    obj = {"name": "테니스 ⚽", "values": [1, 2.5, None]}
    write_json(tmp_path / "x.json", obj)
    assert read_json(tmp_path / "x.json") == obj
    assert "테니스" in (tmp_path / "x.json").read_text(encoding="utf-8")


def test_read_json_missing(tmp_path):
    with pytest.raises(FormatError, match="x.json is missing; the folder is incomplete"):
        read_json(tmp_path / "x.json")


def test_read_json_corrupted(tmp_path):
    (tmp_path / "x.json").write_text('{"kind": "ind')
    with pytest.raises(FormatError, match=r"x.json is corrupted \(.*\); rebuild or re-save it"):
        read_json(tmp_path / "x.json")


def test_read_json_not_utf8(tmp_path):
    (tmp_path / "x.json").write_bytes(b'{"a": "\xff"}')
    with pytest.raises(FormatError, match="is corrupted"):
        read_json(tmp_path / "x.json")


# -- read_config ------------------------------------------------------------------------------
def write_config(folder, **config):
    folder.mkdir(exist_ok=True)
    write_json(folder / "config.json", config)
    return folder


def test_read_config_returns_the_config(tmp_path):
    folder = write_config(tmp_path / "m", kind="index", format_version=2, extra=1)
    assert read_config(folder, kind="index", versions=(1, 2))["extra"] == 1


def test_read_config_missing_folder(tmp_path):
    with pytest.raises(FormatError, match="does not exist; check the path"):
        read_config(tmp_path / "nope", kind="index", versions=(1,))


def test_read_config_file_instead_of_folder(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(FormatError, match="is a file, but a simtools index is a folder"):
        read_config(tmp_path / "f", kind="index", versions=(1,))


def test_read_config_missing_config(tmp_path):
    (tmp_path / "m").mkdir()
    with pytest.raises(FormatError, match="config.json is missing"):
        read_config(tmp_path / "m", kind="index", versions=(1,))


def test_read_config_corrupted_json(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{not json")
    with pytest.raises(FormatError, match="config.json is corrupted"):
        read_config(tmp_path / "m", kind="index", versions=(1,))


def test_read_config_not_an_object(tmp_path):
    (tmp_path / "m").mkdir()
    write_json(tmp_path / "m" / "config.json", [1, 2])
    with pytest.raises(FormatError, match="is not a JSON object"):
        read_config(tmp_path / "m", kind="index", versions=(1,))


def test_read_config_wrong_kind(tmp_path):
    folder = write_config(tmp_path / "m", kind="encoder", format_version=1)
    with pytest.raises(FormatError, match="holds a simtools 'encoder', not a 'index'"):
        read_config(folder, kind="index", versions=(1,))


def test_read_config_wrong_version(tmp_path):
    folder = write_config(tmp_path / "m", kind="index", format_version=99)
    with pytest.raises(FormatError, match=r"format version 99; this simtools reads \[1\]"):
        read_config(folder, kind="index", versions=(1,))


def test_format_error_is_a_value_error():
    assert issubclass(FormatError, ValueError)


# -- arrays -----------------------------------------------------------------------------------
def test_arrays_round_trip(tmp_path, rng):
    arrays = {"x": rng.normal(size=(3, 4)).astype(np.float32),
              "ids": np.arange(5, dtype=np.int64), "bytes": np.zeros(0, dtype=np.uint8)}
    save_arrays(tmp_path / "a.safetensors", arrays)
    loaded = load_arrays(tmp_path / "a.safetensors")
    assert sorted(loaded) == sorted(arrays)
    for name, value in arrays.items():
        assert loaded[name].dtype == value.dtype
        np.testing.assert_array_equal(loaded[name], value)


def test_save_arrays_accepts_non_contiguous(tmp_path):
    X = np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2]
    save_arrays(tmp_path / "a.safetensors", {"x": X})
    np.testing.assert_array_equal(load_arrays(tmp_path / "a.safetensors")["x"], X)


def test_load_arrays_missing(tmp_path):
    with pytest.raises(FormatError, match="a.safetensors is missing"):
        load_arrays(tmp_path / "a.safetensors")


def test_load_arrays_truncated(tmp_path, rng):
    path = tmp_path / "a.safetensors"
    save_arrays(path, {"x": rng.normal(size=(50, 8)).astype(np.float32)})
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(FormatError, match="is corrupted or truncated"):
        load_arrays(path)


def test_load_arrays_garbage(tmp_path):
    path = tmp_path / "a.safetensors"
    path.write_bytes(b"\x00\x01 not a safetensors file")
    with pytest.raises(FormatError, match="is corrupted or truncated"):
        load_arrays(path)
