"""The recorded model figures (uniseg/models/facts.json) equal the computation, and the registry
is the timm-style one: plain registered functions, glob filters, no torch needed to list or look up."""

from __future__ import annotations

import pytest
from conftest import run_python

from uniseg.errors import UnisegError
from uniseg.models import facts
from uniseg.models.registry import build_model, get_spec, list_models, model_info

BUILT_IN = ["hrnet_w18_small_v1", "hrnet_w18_small_v2", "hrnet_w18", "hrnet_w48", "hrnet_tiny"]
REWRITE = "the architecture changed? rewrite the file with: python -m uniseg.models.facts"


@pytest.fixture(scope="module")
def computed() -> dict:
    """Every figure the file records, counted now on the meta device (about 10 s for all models)."""
    return facts.compute_facts()["models"]


@pytest.mark.parametrize("name", BUILT_IN)
def test_recorded_figures_equal_the_computation(name, computed):
    recorded = facts._load()[name]
    assert recorded["info"] == computed[name]["info"] == model_info(name), REWRITE
    for head in facts.HEADS:
        for size in facts.SIZES:
            c = facts.recorded_complexity(name, facts.CLASSES, head, size)
            assert c is not None and c.size == size
            assert c.params == computed[name]["params"][head], (head, REWRITE)
            assert c.trainable_params == computed[name]["trainable_params"][head], (head, REWRITE)
            assert c.macs == computed[name]["macs"][head][f"{size[0]}x{size[1]}"], (head, size, REWRITE)


def test_every_registered_model_is_recorded():
    assert list(facts._load()) == list_models() == BUILT_IN


def test_only_the_recorded_settings_are_answered_from_the_file():
    assert facts.recorded_complexity("hrnet_tiny", 19, "linear", (512, 1024)) is not None
    assert facts.recorded_complexity("hrnet_tiny", 70, "linear", (512, 1024)) is None  # another class count
    assert facts.recorded_complexity("hrnet_tiny", 19, "linear", (512, 512)) is None  # another size
    assert facts.recorded_complexity("hrnet_nano", 19, "linear", (512, 1024)) is None  # not a built-in model
    assert facts.recorded_info("hrnet_nano") is None


def test_the_w48_head_swap_counts_by_hand():
    """A 19-class linear head on W48's 720 feature channels: 720*19 weights + 19 biases; cosine has no bias."""
    lin = facts.recorded_complexity("hrnet_w48", 19, "linear", (512, 1024))
    cos = facts.recorded_complexity("hrnet_w48", 19, "cosine", (512, 1024))
    assert lin.params - cos.params == 19
    # element count of the official HRNetV2-W48 segmentation model with a 19-class head, as the
    # official model definition (HRNet-Semantic-Segmentation, lib/models/seg_hrnet.py) builds it
    assert lin.params == 65_859_379


def test_list_models_glob_filter():
    assert list_models("hrnet_w18*") == ["hrnet_w18_small_v1", "hrnet_w18_small_v2", "hrnet_w18"]
    assert list_models(["*tiny", "hrnet_w48"]) == ["hrnet_w48", "hrnet_tiny"]
    assert list_models("resnet*") == []
    assert list_models() == BUILT_IN


def test_variants_are_plain_registered_functions():
    import uniseg.models as models

    for name in BUILT_IN:
        fn = getattr(models, name)
        assert get_spec(name).builder is fn and fn.__name__ == name
    model = models.hrnet_tiny(7, head="cosine")
    assert model.num_classes == 7 and model.head_type == "cosine"
    assert build_model("hrnet_tiny", 7).num_classes == 7


def test_unknown_names_and_bad_arguments_are_one_line_errors():
    with pytest.raises(UnisegError, match=r"unknown model 'hrnet_w18_smal' \(did you mean hrnet_w18_small_v2"):
        get_spec("hrnet_w18_smal")
    with pytest.raises(UnisegError, match="unknown head 'softmax'"):
        build_model("hrnet_tiny", 3, head="softmax")
    with pytest.raises(UnisegError, match="num_classes must be a positive integer"):
        build_model("hrnet_tiny", 0)


def test_registry_and_facts_import_without_torch():
    code = (
        "import sys\n"
        "from uniseg.models import list_models, get_spec\n"
        "from uniseg.models.facts import recorded_complexity, recorded_info\n"
        "assert recorded_complexity('hrnet_w48', 19, 'linear', (512, 1024)).params > 0\n"
        "assert recorded_info(list_models()[0])['family'] == get_spec('hrnet_w48').family == 'hrnet'\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    res = run_python(code)
    assert res.returncode == 0, res.stderr
