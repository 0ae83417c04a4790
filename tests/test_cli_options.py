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
    from uniseg.cli.options import union_setting as _union

    (tmp_path / "u").mkdir()
    (tmp_path / "u" / "union.yaml").write_text("fingerprint: x\n")
    assert _union("cityscapes+idd", registry) == ["cityscapes", "idd"]
    assert _union(str(tmp_path / "u"), registry) == str(tmp_path / "u")
    with pytest.raises(UnisegError, match="no union.yaml in this folder"):
        _union(str(tmp_path), registry)


def test_parse_datasets_refuses_a_dataset_named_twice():
    with pytest.raises(UnisegError, match="--datasets names 'idd' twice"):
        parse_datasets(["idd=/a", "cityscapes=/b", "idd=/c"])


def test_auto_or_number_options():
    from uniseg.cli.options import parse_tau, parse_threshold

    assert parse_tau("auto") is None and parse_tau(" AUTO ") is None and parse_tau("0") == 0.0 and parse_tau("1") == 1.0
    assert parse_threshold("auto") is None and parse_threshold("0.1") == 0.1
    for parse, text, message in ((parse_tau, "1.5", r"--tau 1.5: scores lie in \[0, 1\]"), (parse_tau, "x", "--tau 'x': give 'auto'"),
                                 (parse_threshold, "1", r"--threshold 1: a score in \(0, 1\)"), (parse_threshold, "0", "a score in")):
        with pytest.raises(UnisegError, match=message):
            parse(text)


def test_training_scale_and_dataset_weights():
    from uniseg.cli.options import parse_dataset_weights, parse_scale

    assert parse_scale("0.5-2") == (0.5, 2.0) and parse_scale("1") == (1.0, 1.0)
    with pytest.raises(UnisegError, match="--scale 'a-b': give LOW-HIGH"):
        parse_scale("a-b")
    assert parse_dataset_weights("balanced") == "balanced"
    assert parse_dataset_weights("cityscapes=1, mapillary=2.5") == {"cityscapes": 1.0, "mapillary": 2.5}
    for text, message in (("cityscapes=-1", "--dataset-weights cityscapes=-1: a weight is a finite number >= 0"),
                          ("cityscapes", "natural, balanced or NAME=W"), ("=2", "natural, balanced or NAME=W"),
                          ("idd=nan", "finite number >= 0")):
        with pytest.raises(UnisegError, match=message):
            parse_dataset_weights(text)
