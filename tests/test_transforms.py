"""Joint transforms: sizes, scale range, padding with ignore, flips, normalisation, no invented ids."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from PIL import Image

from uniseg.data.transforms import (
    EvalTransform,
    TrainTransform,
    denormalize,
    normalize,
)


def _pair(h, w, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    lab = rng.choice(np.array([0, 3, 17, 42, 255], np.uint8), size=(h, w))
    return img, lab


def test_normalize_uses_imagenet_statistics():
    img = np.zeros((2, 3, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 255, 0, 124
    t = normalize(img)
    assert t.shape == (3, 2, 3) and t.dtype == torch.float32
    assert torch.allclose(t[0], torch.full((2, 3), (1.0 - 0.485) / 0.229))
    assert torch.allclose(t[1], torch.full((2, 3), (0.0 - 0.456) / 0.224))
    assert torch.allclose(t[2], torch.full((2, 3), (124 / 255 - 0.406) / 0.225))
    assert np.array_equal(denormalize(t), img)


def test_train_output_is_crop_sized():
    img, lab = _pair(60, 100)
    t = TrainTransform(crop=(32, 48), short_side=None)
    x, y = t(img, lab, np.random.default_rng(0))
    assert x.shape == (3, 32, 48) and y.shape == (32, 48) and y.dtype == torch.int64


def test_resize_to_short_side_then_scale_range():
    t = TrainTransform(crop=16, short_side=1080, scale=(0.5, 2.0))
    rng = np.random.default_rng(0)
    totals = [t.params(3000, 4000, rng).scale for _ in range(300)]
    base = 1080 / 3000
    assert min(totals) >= 0.5 * base - 1e-9 and max(totals) <= 2.0 * base + 1e-9
    assert min(totals) < 0.6 * base and max(totals) > 1.9 * base  # the range is used
    p = TrainTransform(crop=16, short_side=1080, scale=(1.0, 1.0)).params(3000, 4000, rng)
    assert p.scaled == (1080, 1440)


def test_small_image_is_padded_with_ignore_and_mean():
    img = np.full((10, 20, 3), 200, np.uint8)
    lab = np.full((10, 20), 7, np.uint8)
    t = TrainTransform(crop=(30, 40), short_side=None, scale=(1.0, 1.0), flip=0.0)
    x, y = t(img, lab, np.random.default_rng(0))
    y = y.numpy()
    assert np.all(y[:10, :20] == 7)
    assert np.all(y[10:, :] == 255) and np.all(y[:, 20:] == 255)  # padding is ignore, never class 0
    pad = x[:, 20:, 20:]
    assert torch.allclose(pad, torch.zeros_like(pad), atol=0.02)  # mean colour -> ~0 after normalising


def test_flip_mirrors_image_and_label_together():
    img = np.zeros((8, 8, 3), np.uint8)
    img[:, :4] = 255
    lab = np.zeros((8, 8), np.uint8)
    lab[:, :4] = 5
    t = TrainTransform(crop=8, short_side=None, scale=(1.0, 1.0), flip=1.0)
    x, y = t(img, lab, np.random.default_rng(0))
    assert np.all(y.numpy()[:, 4:] == 5) and np.all(y.numpy()[:, :4] == 0)
    back = denormalize(x)
    assert np.all(back[:, 4:] == 255) and np.all(back[:, :4] == 0)


def test_identity_crop_keeps_pixels():
    img, lab = _pair(16, 16, seed=3)
    t = TrainTransform(crop=16, short_side=None, scale=(1.0, 1.0), flip=0.0)
    x, y = t(img, lab, np.random.default_rng(0))
    assert np.array_equal(y.numpy(), lab.astype(np.int64))
    assert np.array_equal(denormalize(x), img)


def test_image_and_label_stay_aligned_under_scale():
    # a label that equals a function of the image: the red channel thresholded
    h, w = 40, 60
    img = np.zeros((h, w, 3), np.uint8)
    lab = np.zeros((h, w), np.uint8)
    img[10:30, 20:45] = (255, 0, 0)
    lab[10:30, 20:45] = 9
    t = TrainTransform(crop=(80, 120), short_side=None, scale=(2.0, 2.0), flip=0.5)
    for seed in range(5):
        x, y = t(img, lab, np.random.default_rng(seed))
        red = denormalize(x)[..., 0] > 128
        y = y.numpy()
        agree = (red == (y == 9)).mean()
        assert agree > 0.97, agree


def test_same_rng_same_output():
    img, lab = _pair(50, 70)
    t = TrainTransform(crop=32, short_side=40)
    a = t(img, lab, np.random.default_rng(11))
    b = t(img, lab, np.random.default_rng(11))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_label_none_gives_ignore():
    img, _ = _pair(20, 20)
    x, y = TrainTransform(crop=8, short_side=None)(img, None, np.random.default_rng(0))
    assert y.shape == (8, 8) and bool((y == 255).all())


def test_mismatched_label_size_is_refused():
    img, _ = _pair(20, 20)
    with pytest.raises(ValueError, match="label size"):
        TrainTransform(crop=8)(img, np.zeros((10, 20), np.uint8), np.random.default_rng(0))


def test_invalid_parameters():
    with pytest.raises(ValueError):
        TrainTransform(scale=(2.0, 1.0))
    with pytest.raises(ValueError):
        TrainTransform(crop=0)
    with pytest.raises(ValueError):
        TrainTransform(flip=1.5)


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(3, 48),
    w=st.integers(3, 48),
    crop=st.integers(4, 40),
    short=st.sampled_from([None, 8, 30, 70]),
    lo=st.floats(0.3, 1.0),
    span=st.floats(0.0, 2.0),
    values=st.lists(st.integers(0, 254), min_size=1, max_size=6),
    seed=st.integers(0, 2**32 - 1),
)
def test_train_transform_never_invents_a_class_id(h, w, crop, short, lo, span, values, seed):
    rng = np.random.default_rng(seed)
    lab = rng.choice(np.array(values, np.uint8), size=(h, w))
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    t = TrainTransform(crop=crop, short_side=short, scale=(lo, lo + span))
    _, y = t(img, lab, rng)
    assert set(np.unique(y.numpy()).tolist()) <= set(values) | {255}


@settings(max_examples=40, deadline=None)
@given(h=st.integers(3, 60), w=st.integers(3, 60), short=st.integers(2, 90), values=st.lists(st.integers(0, 254), min_size=1, max_size=5))
def test_eval_transform_never_invents_a_class_id(h, w, short, values):
    rng = np.random.default_rng(h * 1000 + w)
    lab = rng.choice(np.array(values, np.uint8), size=(h, w))
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    x, y = EvalTransform(short_side=short, resize_label=True)(img, lab)
    assert min(x.shape[1:]) == short
    assert tuple(y.shape) == tuple(x.shape[1:])
    assert set(np.unique(y.numpy()).tolist()) <= set(values)


def test_eval_transform_native_and_resized():
    img, lab = _pair(30, 60)
    x, y = EvalTransform()(img, lab)
    assert x.shape == (3, 30, 60) and np.array_equal(y.numpy(), lab.astype(np.int64))
    x, y = EvalTransform(short_side=15)(img, lab)
    assert x.shape == (3, 15, 30) and y.shape == (30, 60)  # label kept at native resolution
    x, y = EvalTransform(short_side=15, resize_label=True)(Image.fromarray(img), Image.fromarray(lab))
    assert y.shape == (15, 30)
    # NEAREST at exactly half size samples the pixel at each output centre: source (2i+1, 2j+1)
    assert np.array_equal(y.numpy(), lab[1::2, 1::2].astype(np.int64))
