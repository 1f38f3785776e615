"""The embedding student: its WordPiece tokeniser, its numpy runtime, folders and encoder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from simtools.errors import FormatError
from simtools.student.embedding import EmbeddingStudent
from simtools.student.wordpiece import WordPiece, split_words

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "the", "cat", "sat",
         "!", ",", "cafe", "世", "界", "goal", "##s", "a", "##b", "##c", "match", "hello"]
TEXTS = ["the cat sat!", "Unaffable CAFÉ, the goals", "", "   ", "世界 hello", "😂😂",
         "안녕하세요", "zzz", "a goal, a match"]


def _model(rng: np.random.Generator, **kwargs: object) -> EmbeddingStudent:
    vectors = rng.normal(size=(len(VOCAB), 6)).astype(np.float32)
    return EmbeddingStudent(VOCAB, vectors, **kwargs)  # type: ignore[arg-type]


def _reference(model: EmbeddingStudent, texts: list[str]) -> np.ndarray:
    """Plain numpy: the mean of each text's token rows, L2-normalised (zeros for none)."""
    table = model.dense_vectors()
    out = np.zeros((len(texts), model.dim), np.float32)
    for i, text in enumerate(texts):
        ids = [model.tokenizer.index[t] for t in model.tokenizer.tokenize(text)]
        if ids:
            mean = table[ids].mean(axis=0)
            out[i] = mean / np.linalg.norm(mean)
    return out


def test_wordpiece_cuts_greedily_longest_first() -> None:
    wp = WordPiece(VOCAB)
    assert wp.tokenize("Unaffable") == ["un", "##aff", "##able"]
    assert wp.tokenize("goals, the cat!") == ["goal", "##s", ",", "the", "cat", "!"]
    assert wp.tokenize("abc") == ["a", "##b", "##c"]
    # a word with a piece the vocabulary lacks is one [UNK], as is a word over 100 characters
    assert wp.tokenize("catz sat") == ["[UNK]", "sat"]
    assert wp.tokenize("a" + "b" * 100) == ["[UNK]"]


def test_wordpiece_normalises_as_bert_uncased() -> None:
    assert split_words("CAFÉ,naïve") == ["cafe", ",", "naive"]
    assert split_words("世界hello") == ["世", "界", "hello"]
    assert split_words("a\x00b\tc\u200bd") == ["ab", "cd"]  # control and format chars go
    assert split_words("$5+x") == ["$", "5", "+", "x"]  # ASCII symbols are punctuation
    assert split_words("ΣΑΣ") == ["σασ"]  # no final sigma: lowered one character at a time
    assert split_words("") == [] and split_words(" \n ") == []


def test_wordpiece_encode_offsets_and_truncation() -> None:
    wp = WordPiece(VOCAB, max_tokens=2)
    ids, starts = wp.encode(["the cat sat", "", "un"])
    assert ids.dtype == np.int32 and starts.tolist() == [0, 2, 2, 3]
    assert [VOCAB[i] for i in ids] == ["the", "cat", "un"]
    with pytest.raises(ValueError, match="duplicate"):
        WordPiece([*VOCAB, "the"])
    with pytest.raises(ValueError, match="no \\[UNK\\]"):
        WordPiece(["a", "b"])


def test_wordpiece_matches_the_teachers_tokenizer() -> None:
    tokenizers = pytest.importorskip("tokenizers")
    from simtools.distill.static_vectors import teacher_vocab
    from simtools.encoders.teacher import tokenizer_file

    try:
        path = tokenizer_file()
    except ImportError:
        pytest.skip("the packaged MiniLM tokenizer (simtools[teacher]) is not installed")
    reference = tokenizers.Tokenizer.from_file(str(path))
    reference.no_padding()
    reference.no_truncation()
    wp = WordPiece(teacher_vocab())
    texts = ["Yesterday's pink/orange look! \U000feb16 @user #LockIt concealer + powder,…",
             "Café Ünïcode naïve — “quotes” 안녕하세요 世界 hello😀 İstanbul ﬁ ½ x\u200bz",
             "#ΜΣΨΑΣ @ Placita Olvera… 6-9pm $1.13bn (£600m) unaffable " + "x" * 120,
             "ｆｏｌｌｏｗ ˢᴵᴺᶜᴱ 𝓭𝔂𝓼 \x85a\u2028b\u00a0c"]
    ids, starts = wp.encode(texts)
    for i, encoding in enumerate(reference.encode_batch(texts)):
        assert ids[starts[i]: starts[i + 1]].tolist() == encoding.ids[1:-1], texts[i]


def test_embed_equals_a_numpy_reference(rng: np.random.Generator) -> None:
    model = _model(rng)
    vectors, known = model.embed_known(TEXTS, check_scripts=False)
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), 6)
    np.testing.assert_allclose(vectors, _reference(model, TEXTS), atol=1e-5)
    assert known.tolist() == [bool(model.tokenizer.tokenize(t)) for t in TEXTS]
    # many chunks and blocks, embedded in threads, give each text the vector it gets alone
    many = [f"{TEXTS[i % len(TEXTS)]} the cat {'sat ' * (i % 7)}" for i in range(6000)]
    together = model.embed(many, check_scripts=False)
    np.testing.assert_allclose(together[::611], _reference(model, many[::611]), atol=1e-5)


def test_unknown_scripts_get_the_zero_vector(rng: np.random.Generator) -> None:
    model = _model(rng, known_pages=[0])
    vectors, known = model.embed_known(TEXTS)
    assert [t for t, k in zip(TEXTS, known, strict=True) if not k] == ["", "   ", "😂😂", "안녕하세요"]
    assert not vectors[~known].any()
    # without the check, emoji and Hangul are [UNK] tokens, with a vector
    assert model.embed_known(TEXTS, check_scripts=False)[1].sum() == known.sum() + 2


def test_int8_and_round_trip(rng: np.random.Generator, tmp_path) -> None:
    model = _model(rng, known_pages=[0], max_tokens=50)
    small = model.quantize()
    assert small.quantized and small.vectors.dtype == np.int8
    cosines = (small.embed(TEXTS) * model.embed(TEXTS)).sum(axis=1)
    assert cosines[model.embed_known(TEXTS)[1]].min() > 0.99
    small.save(tmp_path / "m")
    again = EmbeddingStudent.load(tmp_path / "m")
    assert again.quantized and again.max_tokens == 50 and again.known_pages == [0]
    np.testing.assert_array_equal(again.embed(TEXTS), small.embed(TEXTS))


def _classifier(rng: np.random.Generator, path) -> None:
    from simtools.student import StudentClassifier
    from simtools.student.featurizer import HashingFeaturizer

    StudentClassifier(
        HashingFeaturizer(buckets=1 << 8), ["sport", "tech"],
        embeddings=rng.normal(size=(1 << 8, 4)).astype(np.float32),
        head_weight=np.zeros((4, 2), np.float32), head_bias=np.zeros(2, np.float32)).save(path)


def test_wrong_kind_and_version_are_one_line_errors(rng: np.random.Generator, tmp_path) -> None:
    from folder_tools import live, reseal

    from simtools.student import StudentClassifier

    _classifier(rng, tmp_path / "clf")
    with pytest.raises(FormatError, match="holds a student classifier .labels sport, tech.") as e:
        EmbeddingStudent.load(tmp_path / "clf")
    assert "\n" not in str(e.value)
    _model(rng).save(tmp_path / "emb")
    with pytest.raises(FormatError, match="embedding model") as e:
        StudentClassifier.load(tmp_path / "emb")
    # the library words its advice as arguments; the CLI turns them into flags
    assert "\n" not in str(e.value) and "--" not in str(e.value)
    assert "encoder='student:PATH'" in str(e.value)
    config_path = live(tmp_path / "emb") / "config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "format_version": 99}))
    reseal(tmp_path / "emb")
    with pytest.raises(FormatError, match="format version 99"):
        EmbeddingStudent.load(tmp_path / "emb")


def test_encoder_round_trip_and_student_dir(rng: np.random.Generator, tmp_path) -> None:
    from simtools.encoders import load_encoder, make_encoder
    from simtools.encoders.student import EmbeddingStudentEncoder

    _model(rng).save(tmp_path / "m")
    encoder = make_encoder(f"student:{tmp_path / 'm'}")
    assert isinstance(encoder, EmbeddingStudentEncoder) and encoder.dim == 6
    vectors = encoder.encode(TEXTS)
    encoder.save(tmp_path / "enc")
    again = load_encoder(tmp_path / "enc")
    assert isinstance(again, EmbeddingStudentEncoder)
    np.testing.assert_array_equal(again.encode(TEXTS), vectors)


def test_student_dir_takes_either_kind_of_folder(rng: np.random.Generator, tmp_path) -> None:
    from simtools.encoders import make_encoder
    from simtools.encoders.student import EmbeddingStudentEncoder, StudentEncoder

    _classifier(rng, tmp_path / "clf")
    _model(rng).save(tmp_path / "emb")
    assert type(make_encoder(f"student:{tmp_path / 'clf'}")) is StudentEncoder
    assert type(make_encoder(f"student:{tmp_path / 'emb'}")) is EmbeddingStudentEncoder
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text(json.dumps(
        {"kind": "model", "format_version": 1, "type": "other"}))
    with pytest.raises(FormatError, match="type 'other', expected 'student-embedding'"):
        make_encoder(f"student:{tmp_path / 'other'}")


def test_classify_with_an_embedding_model_names_the_flag(rng: np.random.Generator,
                                                         tmp_path) -> None:
    from click.testing import CliRunner
    from simtools_cli.main import main

    _model(rng).save(tmp_path / "emb")
    result = CliRunner().invoke(main, ["classify", "--model", str(tmp_path / "emb"), "a text"])
    assert result.exit_code == 1
    assert "not a classifier; use it as an encoder (--encoder student:PATH)" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_the_bundled_model_is_the_default_student_encoder() -> None:
    from simtools.encoders import make_encoder
    from simtools.encoders.student import EmbeddingStudentEncoder
    encoder = make_encoder("student")
    assert isinstance(encoder, EmbeddingStudentEncoder) and encoder.model_.quantized
    texts = ["The striker scored twice in the final", "A goal in the cup final",
             "Shares fell as the bank cut its forecast", "안녕하세요", "😂😂"]
    vectors = encoder.encode(texts)
    assert vectors.dtype == np.float32 and vectors.shape == (5, encoder.dim)
    # the UNKNOWN policy: scripts the English model never saw get the zero vector
    assert not vectors[3:].any()
    np.testing.assert_allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, atol=1e-5)
    sims = vectors[:3] @ vectors[:3].T
    assert sims[0, 1] > sims[0, 2] and sims[0, 1] > sims[1, 2]
