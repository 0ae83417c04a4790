"""Listing the files of a folder as the layout finder and ``labels remap`` see them."""

from __future__ import annotations

from uniseg.filetree import visible_files


def test_visible_files_are_relative_sorted_and_skip_hidden(tmp_path):
    for rel in ("b.png", "a/z.png", "a/b/c.png", "a-c.png", ".hidden.png", ".git/x.png", "a/.tmp.png.part", "a/.d/y.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    assert visible_files(tmp_path) == ["a-c.png", "a/b/c.png", "a/z.png", "b.png"]  # plain string order
    assert visible_files(tmp_path / "a") == ["b/c.png", "z.png"]
    assert visible_files(tmp_path / "missing") == [] and visible_files(tmp_path / "b.png") == []
