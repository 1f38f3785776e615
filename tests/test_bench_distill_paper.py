"""benchmarks/distill_paper.py: nets trained side by side are the nets trained one by one,
and the table over several seeds is the mean of the seeds' tables."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from benchmarks import distill_paper as dp  # noqa: E402


def _one_by_one(net, images, labels, spec, loss_fn, targets, seed):
    """The reference: one net, its own Adam, cosine schedule and seeded batch order."""
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(net.parameters(), lr=spec.lr)
    steps = math.ceil(len(labels) / spec.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=spec.epochs * steps)
    net.train()
    for _ in range(spec.epochs):
        order = torch.randperm(len(labels), generator=generator)
        for start in range(0, len(labels), spec.batch_size):
            batch = order[start : start + spec.batch_size]
            loss = loss_fn(net(images[batch]), labels[batch],
                           None if targets is None else targets[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
    return net.eval()


def _data(n=90):
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(n, 6, 6, generator=generator)
    labels = torch.randint(0, 10, (n,), generator=generator)
    return images, labels, torch.randn(n, 10, generator=generator) * 3


def _net(seed, **dropout):
    torch.manual_seed(seed)
    return dp.make_mlp(36, 12, **dropout)


def test_stacked_forward_is_each_nets_forward():
    nets = [_net(1), _net(2), _net(3)]
    stacked = dp.StackedMLP(nets).eval()
    images = torch.rand(7, 6, 6)
    out = stacked(images)
    assert out.shape == (3, 7, 10)
    for i, net in enumerate(nets):
        torch.testing.assert_close(out[i], net.eval()(images), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("seeds", [[5, 5], [5, 6]])
def test_training_side_by_side_equals_training_one_by_one(seeds):
    images, labels, teacher = _data()
    spec = dp.TrainSpec(epochs=3, batch_size=32, lr=3e-3)
    losses = [dp.hard_label_loss, dp.soft_loss(4.0, 0.5)]
    targets = [None, teacher]
    stacked = dp.train(dp.StackedMLP([_net(1), _net(2)]), images, labels, spec,
                       loss_fns=losses, targets=targets, seeds=seeds)
    together = dp.logits_of(stacked, images)
    for i, (init, loss_fn, target, seed) in enumerate(zip([1, 2], losses, targets, seeds)):
        alone = _one_by_one(_net(init), images, labels, spec, loss_fn, target, seed)
        torch.testing.assert_close(together[i], alone(images), atol=1e-4, rtol=1e-4)
    # and training changed something: the nets are no longer their initial selves
    assert not torch.allclose(together[0], _net(1).eval()(images))


def test_fused_and_default_adam_train_the_same_nets():
    images, labels, _ = _data()
    trained = []
    for fused in (True, False):
        spec = dp.TrainSpec(epochs=2, batch_size=32, lr=3e-3, fused_adam=fused)
        net = dp.train(dp.StackedMLP([_net(1), _net(2)]), images, labels, spec,
                       loss_fns=[dp.hard_label_loss] * 2, seeds=[0, 1])
        trained.append(dp.logits_of(net, images))
    torch.testing.assert_close(trained[0], trained[1], atol=1e-4, rtol=1e-4)
    assert not torch.allclose(trained[0][0], _net(1).eval()(images))


def test_stacked_nets_must_match():
    with pytest.raises(ValueError, match="make_mlp's shape and dropout"):
        dp.StackedMLP([_net(1), _net(2, dropout=0.3)])
    with pytest.raises(ValueError, match="2 nets need 2 loss functions"):
        images, labels, _ = _data()
        dp.train(dp.StackedMLP([_net(1), _net(2)]), images, labels, dp.TrainSpec(1),
                 loss_fns=[dp.hard_label_loss], seeds=[0, 0])


def _result(seed, teacher, small, distilled, little=(100, 90)):
    rows = [{"name": "teacher", "kind": "teacher", "test_errors": teacher, "wall_s": 1.0},
            {"name": "small", "kind": "small", "test_errors": small, "wall_s": 1.0}]
    rows += [{"name": f"T={t}", "kind": "distilled", "temperature": t, "test_errors": e,
              "wall_s": 1.0, "gap_recovered": dp.gap_recovered(small, teacher, e)}
             for t, e in distilled.items()]
    config = {"seed": seed, "small_data_fraction": 0.03, "alpha": 0.5, "dataset": "toy"}
    return {"config": config, "n_train": 10, "n_test": 1000, "rows": rows,
            "wall_s_total": 3.0, "environment": {"threads": 2},
            "summary": {"teacher_errors": teacher, "small_errors": small,
                        "little_data_hard_errors": little[0],
                        "little_data_soft_errors": little[1]}}


def test_combine_averages_the_seeds_and_picks_one_temperature():
    one = _result(0, 80, 100, {4.0: 86, 8.0: 90})
    assert dp.combine([one]) is one
    table = dp.combine([one, _result(1, 90, 100, {4.0: 96, 8.0: 91})])
    rows = {r["name"]: r for r in table["rows"]}
    assert rows["teacher"]["test_errors"] == 85.0 and rows["T=4.0"]["test_errors"] == 91.0
    assert rows["T=8.0"]["test_errors_per_seed"] == [90, 91]
    summary = table["summary"]
    # T=8 has the fewer mean errors (90.5), though T=4 wins seed 0
    assert summary["best_temperature"] == 8.0
    assert summary["best_gap_recovered"] == pytest.approx((100 - 90.5) / (100 - 85))
    assert summary["best_gap_recovered_per_seed"] == pytest.approx([10 / 20, 9 / 10])
    assert table["seeds"] == [0, 1] and len(table["runs"]) == 2
    assert "mean test errors over 2 seeds" in dp.format_table(table)


def test_combine_keeps_rows_run_at_each_seeds_best_temperature_as_one_row(tmp_path):
    results = []
    for seed, best_t, little, swept in ((0, 8.0, 1515, 937), (1, 4.0, 1506, 941)):
        result = _result(seed, 80, 100, {4.0: 90, 8.0: 90})
        result["rows"] += [
            {"name": "small, 3% data, hard labels", "kind": "little_data_hard",
             "test_errors": 1800, "wall_s": 1.0},
            {"name": f"small, 3% data, soft T={best_t:g}", "kind": "little_data_soft",
             "temperature": best_t, "alpha": 0.5, "test_errors": little, "wall_s": 1.0},
            {"name": f"distilled T={best_t:g} alpha=0.9", "kind": "alpha_sweep",
             "temperature": best_t, "alpha": 0.9, "test_errors": swept, "wall_s": 1.0},
        ]
        results.append(result)
    table = dp.combine(results)
    rows = {r["kind"]: r for r in table["rows"]}
    assert len(table["rows"]) == 2 + 2 + 3  # teacher, small, T=4, T=8, 3% hard, soft, sweep
    soft, swept = rows["little_data_soft"], rows["alpha_sweep"]
    assert soft["name"] == "small, 3% data, soft T=8 / 4"
    assert soft["test_errors"] == 1510.5 and soft["test_errors_per_seed"] == [1515, 1506]
    assert soft["temperature"] is None and soft["temperature_per_seed"] == [8.0, 4.0]
    assert swept["name"] == "distilled T=8 / 4 alpha=0.9" and swept["test_errors"] == 939.0
    assert swept["gap_recovered"] == pytest.approx((100 - 939) / (100 - 80))
    # the same best T on every seed keeps its plain name and temperature
    results[1]["rows"][-2]["temperature"] = 8.0
    results[1]["rows"][-2]["name"] = "small, 3% data, soft T=8"
    same = {r["kind"]: r for r in dp.combine(results)["rows"]}["little_data_soft"]
    assert same["name"] == "small, 3% data, soft T=8" and same["temperature"] == 8.0
    # and the plot copes with either
    dp.save_plot(table, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").stat().st_size > 0


def test_combine_names_every_place_when_seeds_ran_on_different_devices():
    gpu, cpu = _result(0, 80, 100, {8.0: 90}), _result(1, 90, 100, {8.0: 91})
    gpu["environment"] = {"device": "NVIDIA H200", "threads": 4}
    cpu["environment"] = {"device": "cpu", "threads": 2}
    table = dp.combine([gpu, cpu])
    assert table["environment"] == {"per_seed": {"0": gpu["environment"], "1": cpu["environment"]}}
    summary = dp.format_summary(table)
    assert "NVIDIA H200, 4 CPU thread(s) (seed 0); cpu, 2 CPU thread(s) (seed 1)" in summary
    # one place: said once, as before
    same = dp.combine([_result(0, 80, 100, {8.0: 90}), _result(1, 90, 100, {8.0: 91})])
    assert same["environment"] == {"threads": 2}
    assert "on cpu, 2 CPU thread(s)." in dp.format_summary(same)


def test_dropout_zeroes_a_share_p_and_keeps_the_mean():
    torch.manual_seed(0)
    x = torch.ones(400, 1000)
    out = dp._dropout(x, 0.3)
    zero = (out == 0).float().mean().item()
    assert zero == pytest.approx(0.3, abs=0.005)
    assert out.unique().tolist() == pytest.approx([0.0, 1 / 0.7])
    assert out.mean().item() == pytest.approx(1.0, abs=0.01)
    # drawn from torch's generator: a seed repeats the mask
    torch.manual_seed(0)
    assert torch.equal(dp._dropout(x, 0.3), out)


def _quick(tmp_path, *extra):
    return ["--quick", "--epochs", "1", "--teacher-members", "1", "--temperatures", "2",
            "--alpha-sweep", "", "--output", str(tmp_path / "run.json"), *extra]


def test_resume_takes_finished_seeds_from_the_json_and_trains_the_rest(tmp_path, capsys):
    import json

    assert dp.main(_quick(tmp_path, "--seeds", "0")) == 0
    first = json.loads((tmp_path / "run.json").read_text())
    assert dp.main(_quick(tmp_path, "--seeds", "0,1", "--resume")) == 0
    assert "seed 0: taken from" in capsys.readouterr().err
    both = json.loads((tmp_path / "run.json").read_text())
    assert both["seeds"] == [0, 1]
    assert both["runs"][0] == first  # seed 0 untouched, wall times included
    assert both["runs"][1]["config"]["seed"] == 1
    # a seed the JSON holds but --seeds leaves out would be lost: refused
    with pytest.raises(SystemExit, match=r"also holds seeds \[1\]"):
        dp.main(_quick(tmp_path, "--seeds", "0", "--resume"))
    # other settings would mix two experiments in one table: refused, file kept
    with pytest.raises(SystemExit, match="other settings .*temperatures"):
        dp.main([*_quick(tmp_path, "--seeds", "0,1", "--resume"), "--temperatures", "4"])
    assert json.loads((tmp_path / "run.json").read_text()) == both


def test_resume_reads_runs_saved_before_evaluated_on_existed(tmp_path):
    import json

    assert dp.main(_quick(tmp_path, "--seeds", "0")) == 0
    saved = json.loads((tmp_path / "run.json").read_text())
    del saved["config"]["evaluated_on"]  # as the committed runs were written
    (tmp_path / "run.json").write_text(json.dumps(saved))
    config = dp.Config(**{**saved["config"], "evaluated_on": "test"})
    assert list(dp.finished_runs(tmp_path / "run.json", config)) == [0]
    # but a validation run never resumes into a test-set table
    with pytest.raises(SystemExit, match="other settings .*evaluated_on"):
        dp.finished_runs(
            tmp_path / "run.json", dp.Config(**{**saved["config"], "evaluated_on": "validation"})
        )


def test_hold_out_is_class_balanced_fixed_and_disjoint():
    images = torch.arange(200, dtype=torch.float32).reshape(200, 1, 1).expand(200, 2, 2)
    labels = torch.arange(200) % 10
    rest, held = dp.hold_out(dp.Split(images, labels), 50)
    assert len(held.labels) == 50 and len(rest.labels) == 150
    assert torch.bincount(held.labels).tolist() == [5] * 10
    ids_rest, ids_held = set(rest.images[:, 0, 0].tolist()), set(held.images[:, 0, 0].tolist())
    assert not ids_rest & ids_held and len(ids_rest | ids_held) == 200
    again = dp.hold_out(dp.Split(images, labels), 50)[1]
    assert torch.equal(again.images, held.images)  # the same draw on every call
    with pytest.raises(SystemExit, match="--validation 200"):
        dp.hold_out(dp.Split(images, labels), 200)


def _teacher_config(**changes):
    config = dict(
        dataset="toy", teacher_members=2, teacher_hidden=8, teacher_dropout=0.3,
        teacher_input_dropout=0.0, teacher_epochs=2, student_hidden=12, student_epochs=2,
        temperatures=[4.0], alpha=0.5, alpha_sweep=[], max_shift=0, small_data_fraction=0.5,
        small_data_epochs=2, small_data_temperature=None, batch_size=32, lr=1e-3, seed=0,
        threads=1, device="cpu",
    )
    return dp.Config(**{**config, **changes})


def test_teacher_cache_reuses_logits_only_for_the_same_teacher_and_data(tmp_path, capsys):
    images, labels, _ = _data()
    eval_images = images[:20]
    trained = dp.teacher_logits(_teacher_config(), images, labels, eval_images, tmp_path)
    assert trained[3] is None and trained[0].shape == (2, 90, 10)
    assert trained[1].shape == (2, 20, 10)
    assert [p.name for p in tmp_path.iterdir()] == [dp.teacher_cache_path(
        tmp_path, _teacher_config(), images, labels, eval_images)[0].name]  # no side file left
    # student settings and the place it runs do not touch the teacher: taken from the file
    taken = dp.teacher_logits(
        _teacher_config(student_epochs=9, temperatures=[1.0], threads=2),
        images, labels, eval_images, tmp_path,
    )
    assert taken[3] is not None and "taken from" in capsys.readouterr().err
    torch.testing.assert_close(taken[0], trained[0], rtol=0, atol=0)
    torch.testing.assert_close(taken[1], trained[1], rtol=0, atol=0)
    assert taken[2] == pytest.approx(trained[2])  # the seconds it took to train, kept
    # another teacher recipe, seed or data trains a new teacher
    for config, data in [
        (_teacher_config(teacher_epochs=3), (images, labels, eval_images)),
        (_teacher_config(seed=1), (images, labels, eval_images)),
        (_teacher_config(), (images, labels, images[:21])),
        (_teacher_config(), (images, (labels + 1) % 10, eval_images)),
    ]:
        assert dp.teacher_logits(config, *data, tmp_path)[3] is None
    assert len(list(tmp_path.glob("*.npz"))) == 5


def test_a_run_with_a_cached_teacher_gives_the_same_table(tmp_path, capsys):
    import json

    cache = ["--teacher-cache", str(tmp_path / "cache")]
    assert dp.main([*_quick(tmp_path, "--seeds", "0"), *cache]) == 0
    first = json.loads((tmp_path / "run.json").read_text())
    assert dp.main([*_quick(tmp_path, "--seeds", "0"), *cache]) == 0
    again = json.loads((tmp_path / "run.json").read_text())
    assert first["teacher_logits_from"] is None and again["teacher_logits_from"]
    assert [r["test_errors"] for r in again["rows"]] == [r["test_errors"] for r in first["rows"]]
    assert "came from --teacher-cache" in capsys.readouterr().out
