"""LookupTable.apply / unknown_counts equal the row-by-row mapping on any 8-bit or 16-bit label array."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from uniseg.labelspaces import Registry
from uniseg.unify import build_lut, build_union
from uniseg.unify.lut import LookupTable, RemapRow

_REG = Registry.from_dirs(use_env=False)
_UNION = build_union(_REG.get_many(["cityscapes", "bdd", "idd", "mapillary"]))
_LUT = build_lut(_UNION, _REG.get("mapillary"), "ids")
# a 16-bit encoding (instance-style ids such as Cityscapes' 26001 = car instance 1), listed by hand
_LUT16 = LookupTable(
    dataset="x", encoding="ids16", kind="index", fingerprint="-", bits=16,
    rows=(RemapRow(0, "void", 255, ""), RemapRow(7, "road", 3, "road"), RemapRow(300, "sign", 4, "sign"),
          RemapRow(26001, "car 1", 1, "car"), RemapRow(26002, "car 2", 1, "car"), RemapRow(65535, "last", 2, "last")),
)


def _expected(lut: LookupTable, label: np.ndarray) -> tuple[np.ndarray, dict[int, int]]:
    """What the rows say, one pixel at a time: the unified id (255 when unlisted) and unlisted counts."""
    to = {r.raw_id: r.unified_index for r in lut.rows}
    out = np.full(label.shape, 255, dtype=np.uint8)
    unknown: dict[int, int] = {}
    for pos, v in np.ndenumerate(label):
        if int(v) in to:
            out[pos] = to[int(v)]
        else:
            unknown[int(v)] = unknown.get(int(v), 0) + 1
    return out, unknown


_SHAPE = st.tuples(st.integers(0, 30), st.integers(0, 30))
_LISTED16 = [r.raw_id for r in _LUT16.rows]
_CASES = st.one_of(
    st.tuples(st.just(_LUT), arrays(np.uint8, _SHAPE)),
    st.tuples(st.just(_LUT), arrays(np.uint16, _SHAPE, elements=st.integers(0, 255))),  # a 16-bit PNG of 8-bit ids
    st.tuples(st.just(_LUT16), arrays(np.uint16, _SHAPE, elements=st.one_of(st.sampled_from(_LISTED16), st.integers(0, 65535)))),
)


@settings(max_examples=90, deadline=None)
@given(_CASES, st.booleans())
def test_apply_and_unknown_counts_follow_the_rows(case, transpose):
    lut, label = case
    view = label.T if transpose else label  # non-contiguous views too
    want, unknown = _expected(lut, view)
    out = lut.apply(view)
    assert out.shape == view.shape and out.dtype == np.uint8 and out.flags.writeable
    assert np.array_equal(out, want)
    assert lut.unknown_counts(view) == unknown
    assert lut.value_counts(view)[1] == unknown


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
