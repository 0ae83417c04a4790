"""The parsers of user strings that several commands share (``uniseg.cli.options``)."""

from __future__ import annotations

import pytest

from uniseg.cli.options import parse_datasets, parse_hw
from uniseg.errors import UnisegError


@pytest.mark.parametrize(
    "text,hw",
    [("713x713", (713, 713)), ("512x1024", (512, 1024)), ("256X512", (256, 512)), ("24×48", (24, 48)),
     (" 64 * 32 ", (64, 32)), ("96,128", (96, 128)), ("713", (713, 713))],
)
def test_parse_hw_reads_height_then_width(text, hw):
    assert parse_hw(text, "--size") == hw


@pytest.mark.parametrize(
    "text,message",
    [("big", "--crop 'big' is not HxW"), ("12x", "is not HxW"), ("0x10", "must be positive"), ("20000x20", "larger than 16384"), ("", "is not HxW")],
)
def test_parse_hw_refuses_with_the_flag_named(text, message):
    with pytest.raises(UnisegError, match=message):
        parse_hw(text, "--crop")


def test_parse_datasets_takes_pairs_commas_and_extra_words():
    assert parse_datasets(["cityscapes=/d/cs,idd=/d/idd"], ["bdd=/d/bdd"]) == [("cityscapes", "/d/cs"), ("idd", "/d/idd"), ("bdd", "/d/bdd")]
    with pytest.raises(UnisegError, match="expected NAME=ROOT"):
        parse_datasets(["cityscapes"])


def test_train_records_union_as_a_folder_or_names(tmp_path, registry):
    from uniseg.cli.train import _union

    (tmp_path / "u").mkdir()
    (tmp_path / "u" / "union.yaml").write_text("fingerprint: x\n")
    assert _union("cityscapes+idd", registry) == ["cityscapes", "idd"]
    assert _union(str(tmp_path / "u"), registry) == str(tmp_path / "u")
    with pytest.raises(UnisegError, match="no union.yaml in this folder"):
        _union(str(tmp_path), registry)
