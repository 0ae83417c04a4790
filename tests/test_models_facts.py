"""The recorded model figures (uniseg/models/facts.json) equal the computation, a count by hand and
the official releases, and the registry is the timm-style one: plain registered functions, glob
filters, no torch needed to list or look up."""

from __future__ import annotations

import pytest
from conftest import read_data, run_python

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


# Each variant's design: stem width, stage 1 (bottleneck blocks, planes), stages 2-4 (modules, basic
# blocks per branch, branch widths). The official ones as their experiment configs give them
# (HRNet-Semantic-Segmentation experiments/cityscapes/seg_hrnet_*.yaml; W18 is W48's layout at widths
# 18-144); hrnet_tiny as uniseg designs it (a 32-wide stem, one 16-plane bottleneck, one module per
# stage, one basic block per branch, widths 8-64).
DESIGN = {
    "hrnet_w18_small_v1": (64, (1, 32), [(1, [2, 2], [16, 32]), (1, [2, 2, 2], [16, 32, 64]), (1, [2] * 4, [16, 32, 64, 128])]),
    "hrnet_w18_small_v2": (64, (2, 64), [(1, [2, 2], [18, 36]), (3, [2, 2, 2], [18, 36, 72]), (2, [2] * 4, [18, 36, 72, 144])]),
    "hrnet_w18": (64, (4, 64), [(1, [4, 4], [18, 36]), (4, [4] * 3, [18, 36, 72]), (3, [4] * 4, [18, 36, 72, 144])]),
    "hrnet_w48": (64, (4, 64), [(1, [4, 4], [48, 96]), (4, [4] * 3, [48, 96, 192]), (3, [4] * 4, [48, 96, 192, 384])]),
    "hrnet_tiny": (32, (1, 16), [(1, [1, 1], [8, 16]), (1, [1] * 3, [8, 16, 32]), (1, [1] * 4, [8, 16, 32, 64])]),
}
OFFICIAL = ("hrnet_w18_small_v1", "hrnet_w18_small_v2", "hrnet_w48")


def count_by_hand(name: str, head: str, size: tuple[int, int], classes: int = facts.CLASSES) -> tuple[int, int]:
    """``(parameters, MACs)`` of an HRNetV2 segmenter, written out layer by layer from the design
    (no uniseg code): 3x3 / 1x1 convolutions without bias, each followed by a BatchNorm (weight and
    bias); the stem at 1/2 and 1/4; stage 1 of bottlenecks (1x1, 3x3, 1x1 to 4x planes, a 1x1
    shortcut where the width changes); a transition into each stage (a 3x3 where a branch changes
    width, a stride-2 3x3 chain from the lowest branch into a new one); modules of basic blocks
    (two 3x3) per branch at 1/4, 1/8, ... and a fusion of every branch into every other (1x1 from
    a lower branch, stride-2 3x3 chains from a higher one); the head at 1/4: 1x1 with bias,
    BatchNorm, then the classifier, a 1x1 with bias (linear) or without (cosine). MACs counted
    the official way (lib/utils/modelsummary.py): kernel elements x output pixels of each conv."""
    stem, (blocks1, planes), stages = DESIGN[name]
    h, w = size
    params = macs = 0

    def conv(cin: int, cout: int, k: int, level: int, bias: bool = False, bn: bool = True) -> None:
        nonlocal params, macs
        stride = 2 if level < 0 else 4 * 2**level  # level -1: the stem's 1/2; branch b: 1/(4 * 2**b)
        params += cin * cout * k * k + (cout if bias else 0) + (2 * cout if bn else 0)
        macs += cin * cout * k * k * (h // stride) * (w // stride)

    conv(3, stem, 3, -1)
    conv(stem, stem, 3, 0)
    cin = stem
    for _ in range(blocks1):
        conv(cin, planes, 1, 0), conv(planes, planes, 3, 0), conv(planes, 4 * planes, 1, 0)
        if cin != 4 * planes:
            conv(cin, 4 * planes, 1, 0)
        cin = 4 * planes
    prev = [cin]
    for modules, blocks, widths in stages:
        for b, c in enumerate(widths):
            if b < len(prev) and prev[b] != c:
                conv(prev[b], c, 3, b)
            for j in range(b + 1 - len(prev)):  # new branches only
                conv(prev[-1], c if j == b - len(prev) else prev[-1], 3, len(prev) + j)
        for _ in range(modules):
            for b, c in enumerate(widths):
                for _ in range(blocks[b]):
                    conv(c, c, 3, b), conv(c, c, 3, b)
            for i, ci in enumerate(widths):
                for j, cj in enumerate(widths):
                    if j > i:
                        conv(cj, ci, 1, j)
                    for k in range(i - j):  # j < i: down by stride-2 3x3s, widening at the last
                        conv(cj, ci if k == i - j - 1 else cj, 3, j + k + 1)
        prev = list(widths)
    total = sum(prev)
    conv(total, total, 1, 0, bias=True)
    conv(total, classes, 1, 0, bias=head == "linear", bn=False)
    return params, macs


@pytest.mark.parametrize("name", OFFICIAL)
def test_the_count_by_hand_gives_the_official_figures(name, hrnet_official):
    """The count above against the official models: their exact parameter count (the official model
    definition's, tests/data/hrnet_official_state_dicts.json) and their README's GFLOPs at 1024x2048."""
    params, macs = count_by_hand(name, "linear", (1024, 2048))
    assert params == hrnet_official[name]["params"]
    assert round(macs / 2**30, 1) == read_data("hrnet_official_readme.json")["models"][name]["gflops_1024x2048"]


@pytest.mark.parametrize("name", BUILT_IN)
def test_recorded_figures_equal_the_count_by_hand(name):
    """Every recorded count (both heads, both sizes; every parameter trains) and the recorded design."""
    for head in facts.HEADS:
        for size in facts.SIZES:
            params, macs = count_by_hand(name, head, size)
            c = facts.recorded_complexity(name, facts.CLASSES, head, size)
            assert (c.params, c.trainable_params, c.macs) == (params, params, macs), (head, size)
    stem, (blocks1, planes), stages = DESIGN[name]
    info = facts.recorded_info(name)
    design = [(1, "BOTTLENECK", [blocks1], [planes])] + [(m, "BASIC", b, c) for m, b, c in stages]
    assert [(s["modules"], s["block"], s["blocks"], s["channels"]) for s in info["stages"]] == design
    assert info["feature_channels"] == sum(stages[-1][2])


@pytest.mark.parametrize("name", OFFICIAL)
def test_recorded_official_figures_are_the_readme_ones(name):
    """The release figures ``uniseg models info`` quotes are the README's (#Params in millions, GFLOPs)."""
    readme = read_data("hrnet_official_readme.json")["models"][name]
    assert facts.recorded_info(name)["official"] == {"params_m": readme["params_m"], "gmacs_1024x2048": readme["gflops_1024x2048"]}


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


def test_a_variant_is_one_entry_of_its_familys_data():
    """Every entry of ``hrnet_configs.VARIANTS`` is a registered model (nothing else to edit), and
    another family registers with timm's decorator pattern."""
    from uniseg.models import registry
    from uniseg.models.hrnet_configs import VARIANTS

    assert [n for n in list_models() if get_spec(n).family == "hrnet"] == list(VARIANTS)
    fn = get_spec("hrnet_tiny").builder
    model = fn(7, head="cosine")
    assert fn.__name__ == "hrnet_tiny" and model.num_classes == 7 and model.head_type == "cosine"
    assert build_model("hrnet_tiny", 7).num_classes == 7

    @registry.register_model(family="toy", describe=lambda name: {"title": "a toy", "description": ""})
    def toy_net(num_classes, head="linear", **kwargs):
        return ("toy", num_classes, head)

    try:
        assert "toy_net" in list_models() and build_model("toy_net", 3, head="cosine") == ("toy", 3, "cosine")
        assert registry.model_info("toy_net")["family"] == "toy"
        with pytest.raises(ValueError, match="registered twice"):
            registry.register("toy_net", family="toy", builder=toy_net, describe=lambda n: {})
    finally:
        registry._REGISTRY.pop("toy_net")


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
