"""``uniseg.labelfiles``: the RGB-key codec and choosing label files by the registry layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from uniseg.labelfiles import format_raw, pack_rgb, pattern_for_split, select_label_files, top_values, unpack_rgb


def test_rgb_keys_by_hand():
    assert pack_rgb((1, 2, 3)) == 0x010203 == 66051
    assert unpack_rgb(66051) == (1, 2, 3)
    assert pack_rgb((255, 255, 255)) == (1 << 24) - 1
    img = np.array([[[128, 64, 128], [0, 0, 142]]], dtype=np.uint8)  # Cityscapes road, car
    assert pack_rgb(img).tolist() == [[0x804080, 0x00008E]]
    assert format_raw(0x804080, colour=True) == "(128,64,128)" and format_raw(7, colour=False) == "7"


@settings(max_examples=40, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(0, 6), st.integers(0, 6), st.just(3))))
def test_rgb_keys_round_trip(rgb):
    keys = pack_rgb(rgb)
    assert keys.shape == rgb.shape[:2] and np.array_equal(unpack_rgb(keys), rgb)
    if rgb.size:
        assert int(keys[0, 0]) == pack_rgb(tuple(int(v) for v in rgb[0, 0]))


def test_top_values_keeps_the_most_frequent():
    counts = {v: v % 7 + 1 for v in range(40)}
    top = top_values(counts, 3)
    assert top == {6: 7, 13: 7, 20: 7}


def test_pattern_for_split():
    assert pattern_for_split("{split}annot/{stem}.png", "train") == "trainannot/{stem}.png"
    assert pattern_for_split("{split}/{stem}_L.png", "") == "{stem}_L.png"


def test_selection_rules(registry, tmp_path):
    space = registry.get("bdd")
    legacy = [Path(f"/d/seg/labels/train/{i}_train_id.png") for i in "ab"] + [Path("/d/seg/images/train/a.jpg")]
    sel = select_label_files(space, "trainIds", legacy)
    assert sel.rule == "layout" and sel.files == legacy[:2] and sel.left_out == {"other files": 1}
    loose = [Path("/x/a_train_id.png"), Path("/x/notes.txt")]
    sel = select_label_files(space, "trainIds", loose)
    assert sel.rule == "name" and sel.files == loose[:1]
    kitti = registry.get("kitti")
    rgb = [Path("/k/training/semantic_rgb/000000_10.png"), Path("/k/training/semantic/000000_10.png")]
    assert select_label_files(kitti, "labelIds", rgb).files == rgb[1:]  # semantic_rgb is no label folder
    nothing = [Path("/y/a.png"), Path("/y/b.tif"), Path("/y/c.jpg")]
    sel = select_label_files(registry.get("cityscapes"), "labelIds", nothing)
    assert sel.rule == "all" and sel.files == nothing[:2] and sel.left_out == {"other files": 1}
