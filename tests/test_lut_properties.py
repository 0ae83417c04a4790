"""LookupTable.apply equals a plain numpy gather on any 8-bit or 16-bit label array."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from uniseg.labelspaces import Registry
from uniseg.unify import build_lut, build_union

_REG = Registry.from_dirs(use_env=False)
_UNION = build_union(_REG.get_many(["cityscapes", "bdd", "idd", "mapillary"]))
_LUT = build_lut(_UNION, _REG.get("mapillary"), "ids")


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.uint8, st.tuples(st.integers(0, 40), st.integers(0, 40))),
    st.booleans(),
)
def test_apply_matches_gather(label, transpose):
    view = label.T if transpose else label  # non-contiguous views too
    out = _LUT.apply(view)
    assert out.shape == view.shape and out.dtype == np.uint8 and out.flags.writeable
    assert np.array_equal(out, _LUT.table[view])


@settings(max_examples=30, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 30), st.integers(1, 30))))
def test_unknown_counts_match_numpy(label):
    counts = _LUT.unknown_counts(label)
    known = _LUT.known
    vals, cnt = np.unique(label[~known[label]], return_counts=True)
    assert counts == {int(v): int(c) for v, c in zip(vals, cnt)}


def test_apply_image_matches_apply():
    from PIL import Image

    rng = np.random.default_rng(1)
    label = rng.integers(0, 80, size=(17, 23), dtype=np.uint8)
    for mode in ("L", "P"):
        img = Image.fromarray(label, mode=mode)
        out, unknown = _LUT.apply_image(img)
        assert out.mode == "L" and np.array_equal(np.asarray(out), _LUT.apply(label))
        assert unknown == _LUT.unknown_counts(label)


def test_values_beyond_8_bits_refused():
    import pytest

    with pytest.raises(ValueError, match="exceed 8-bit"):
        _LUT.apply(np.array([[3, 300]], dtype=np.uint16))
    assert _LUT.unknown_counts(np.array([[3, 300]], dtype=np.uint16)) == {300: 1}
