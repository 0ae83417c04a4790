"""Messages that name the culprit and the fix (the issue "nothing lost, nothing silently wrong",
part 8): a checkpoint of another shape, a resumed run's default learning rate, the same fault worded
alike by eval and relations mine, the data check table at 80 columns, a seed out of range refused
before anything is built, and no folder left behind by a run refused on its input."""

from __future__ import annotations

import torch

from conftest import run_cli
from engine_fixtures import small_world, tiny_args, tiny_config  # noqa: F401  (fixture)
from inprocess import cli


def _line(res) -> str:
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    return lines[0]


def test_a_checkpoint_of_another_shape_names_the_key(small_world, tmp_path, capsys):
    from uniseg.engine.trainer import train

    ck = train(tiny_config(small_world, iterations=1, val_split="none"), tmp_path / "run").last
    doc = torch.load(ck, weights_only=True)
    key = next(k for k, v in doc["model"].items() if k.endswith("bn2.weight"))
    doc["model"][key] = torch.zeros(3, 3)
    torch.save(doc, tmp_path / "edited.pt")
    line = _line(cli(capsys, "eval", "--checkpoint", tmp_path / "edited.pt", "--datasets", f"kitti={small_world / 'kitti'}", "--workers", "0"))
    assert key in line and "3x3 in the file" in line and "in the model" in line, line


def test_resume_names_the_runs_default_learning_rate(small_world, tmp_path, capsys):
    from uniseg.engine.trainer import train

    out = tmp_path / "run"
    train(tiny_config(small_world, iterations=1, val_split="none"), out)  # lr not given: 0.01 x 4 / 16
    line = _line(cli(capsys, "train", "--resume", out, "--lr", "0.5"))
    assert "--lr cannot change" in line and "None" not in line, line
    assert "(the run has lr 0.0025 = the default 0.01 x batch 4 / 16; asked for lr 0.5)" in line, line


def test_eval_and_relations_mine_word_a_missing_split_alike(small_world, tmp_path, capsys):
    from uniseg.engine.trainer import train

    ck = train(tiny_config(small_world, iterations=1, val_split="none"), tmp_path / "run").last
    cs = small_world / "cityscapes"
    said = _line(cli(capsys, "eval", "--checkpoint", ck, "--datasets", f"cityscapes={cs}", "--split", "test", "--workers", "0"))
    mined = _line(cli(capsys, "relations", "mine", "--checkpoint", ck, "--datasets", f"cityscapes={cs}", "--split", "test",
                      "--workers", "0", "--out", tmp_path / "mine"))
    want = f"error: cityscapes={cs}: no labelled split 'test' (labelled splits there: train, val); choose one with --split"
    assert said == want and mined == want, (said, mined)
    assert not (tmp_path / "mine").exists()


def test_data_check_names_every_broken_file_whole_at_80_columns(small_world, tmp_path):
    import shutil

    cs = tmp_path / "cityscapes"
    shutil.copytree(small_world / "cityscapes", cs)
    broken = sorted((cs / "gtFine" / "train").rglob("*_gtFine_labelIds.png"))[:3]
    for p in broken:
        p.write_bytes(b"not a png")
    res = run_cli("data", "check", "cityscapes", str(cs), env={"COLUMNS": "80"})
    assert res.returncode == 2
    table = res.stdout[res.stdout.index("Broken files"):]
    cells = "".join(line.split("│")[1].strip() for line in table.splitlines() if line.startswith("│"))
    for p in broken:  # each name whole (folded over lines), none cut to a shared prefix
        assert p.relative_to(cs).as_posix() in cells, table
    assert max(len(line) for line in res.stdout.splitlines()) <= 80


def test_a_seed_out_of_range_is_refused_before_anything_is_built(small_world, tmp_path, capsys):
    huge = str(2**64)
    line = _line(cli(capsys, "demo", "--plan", "quick", "--seed", huge, "--out", tmp_path / "demo"))
    assert "--seed" in line and "4294967295" in line and huge in line, line
    assert not (tmp_path / "demo").exists()  # no world built for nothing
    line = _line(cli(capsys, *tiny_args(small_world, tmp_path / "run", iterations=1), "--seed", huge))
    assert "--seed" in line and "4294967295" in line, line
    assert not (tmp_path / "run").exists()


def test_a_run_refused_on_its_input_leaves_no_folder(small_world, tmp_path, capsys):
    out = tmp_path / "deep" / "run"
    args = tiny_args(small_world, out, iterations=1)
    args[args.index("--datasets") + 1] = f"cityscapes={tmp_path / 'nowhere'}"
    line = _line(cli(capsys, *args))
    assert "nowhere" in line
    assert not (tmp_path / "deep").exists()  # not even a folder holding only .uniseg.lock
