"""PSNR-Y / SSIM-Y: known values, and the published Bicubic rows from the shipped LR files."""

import math

import pytest
import torch

import tasks.sr as sr
from tasks.sr.metrics import psnr_y, rgb_to_y, ssim_y
from tasks.sr.resize import imresize

# Published Bicubic rows (e.g. Lim et al. 2017, Table 5): PSNR on Y, border of `scale` cropped.
PUBLISHED_BICUBIC = {("set5", 2): 33.68, ("set5", 3): 30.41, ("set5", 4): 28.43,
                     ("set14", 2): 30.23, ("set14", 3): 27.54, ("set14", 4): 26.00}


def levels(values: torch.Tensor) -> torch.Tensor:
    return values.to(torch.float32) / 255.0


def test_rgb_to_y_spans_16_to_235():
    black, white = torch.zeros(3, 2, 2), torch.ones(3, 2, 2)
    assert torch.allclose(rgb_to_y(black), torch.full((1, 2, 2), 16.0))
    assert torch.allclose(rgb_to_y(white), torch.full((1, 2, 2), 235.0))
    pure_red = torch.tensor([1.0, 0.0, 0.0])[:, None, None]
    assert rgb_to_y(pure_red).item() == pytest.approx(16 + 65.481)


def test_identical_images_score_inf_and_one():
    img = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(0))
    assert psnr_y(img, img.clone(), 2) == math.inf
    assert ssim_y(img, img.clone(), 2) == pytest.approx(1.0, abs=1e-12)


def test_a_shift_of_two_levels_on_every_channel():
    """+2 levels on R, G, B moves Y by 219 * 2 / 255 levels everywhere."""
    gen = torch.Generator().manual_seed(1)
    hr = levels(torch.randint(20, 230, (1, 3, 32, 48), generator=gen))
    sr_img = hr + 2 / 255
    expected = 20 * math.log10(255 / (219 * 2 / 255))
    assert psnr_y(sr_img, hr, 4) == pytest.approx(expected, abs=1e-9)
    assert expected == pytest.approx(43.43, abs=0.01)


def test_ssim_of_a_flat_gray_shift_is_the_luminance_term():
    """Flat images: variances vanish, SSIM = (2 m1 m2 + C1) / (m1^2 + m2^2 + C1)."""
    a, b = levels(torch.full((1, 1, 30, 30), 100)), levels(torch.full((1, 1, 30, 30), 110))
    c1 = (0.01 * 255) ** 2
    assert ssim_y(a, b, 2) == pytest.approx((2 * 100 * 110 + c1) / (100**2 + 110**2 + c1), abs=1e-12)
    assert psnr_y(a, b, 2) == pytest.approx(20 * math.log10(255 / 10), abs=1e-9)


def test_scores_quantise_to_uint8_first():
    hr = levels(torch.full((1, 3, 20, 20), 128))
    assert psnr_y(hr + 0.4 / 255, hr, 2) == math.inf  # rounds back to the same level


def test_mismatched_shapes_are_rejected():
    with pytest.raises(ValueError, match="differ in shape"):
        psnr_y(torch.zeros(1, 3, 20, 20), torch.zeros(1, 3, 20, 22), 2)


@pytest.mark.parametrize("name", ["set5", "set14"])
def test_bicubic_of_the_shipped_lr_files_reproduces_the_published_rows(name):
    for scale in (2, 3, 4):
        images = sr.load_eval_set(sr.DEFAULT_EVAL_ROOTS[name], scale)
        scores = []
        for img in images:
            up = imresize(img.lr, scale)
            if img.gray:  # Set14's bridge: scored on its own gray values
                up = up[:, :1]
            scores.append(psnr_y(up, img.hr, scale))
        mean = sum(scores) / len(scores)
        assert mean == pytest.approx(PUBLISHED_BICUBIC[name, scale], abs=0.02), (name, scale, mean)


def test_bicubic_model_through_evaluate_sets_scores_the_published_x2_rows():
    """The exportable bicubic module, scored the way every model is (gray bridge included)."""
    from spaces import BicubicArch

    sets = {name: sr.load_eval_set(root, 2) for name, root in sr.DEFAULT_EVAL_ROOTS.items()}
    scores = sr.evaluate_sets(sr.build_model(BicubicArch(2)), sets, 2)
    assert scores["set5"]["psnr"] == pytest.approx(33.68, abs=0.01)
    assert scores["set14"]["psnr"] == pytest.approx(30.23, abs=0.01)
    # published (MATLAB ssim on rounded Y): 0.9299 and 0.8688; we score Y unrounded
    assert scores["set5"]["ssim"] == pytest.approx(0.9299, abs=0.001)
    assert scores["set14"]["ssim"] == pytest.approx(0.8688, abs=0.001)


def test_torch_bicubic_does_not_reproduce_the_published_row():
    """Why tasks.sr.resize exists: torch's a = -0.75 kernel scores ~33.97 dB on Set5 x2, not 33.68."""
    import torch.nn.functional as F

    images = sr.load_eval_set(sr.DEFAULT_EVAL_ROOTS["set5"], 2)
    scores = [psnr_y(F.interpolate(img.lr, scale_factor=2, mode="bicubic", align_corners=False), img.hr, 2)
              for img in images]
    assert sum(scores) / len(scores) == pytest.approx(33.97, abs=0.05)
