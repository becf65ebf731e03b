"""Images of every kind read as the same 8-bit pixels: 16-bit, grayscale, palette, RGBA, EXIF-rotated;
broken, empty and too-small images are named."""

import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tasks.sr as sr
from tasks.sr.data import DataError, load_eval_set, read_image

_COLOUR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type (gray, gray+alpha, RGB, RGBA)


def write_png16(path: Path, arr: np.ndarray) -> None:
    """PIL writes 16-bit PNGs only for grayscale: ``(H, W)`` or ``(H, W, C)`` uint16 -> a 16-bit PNG at ``path``."""
    big = np.asarray(arr, dtype=">u2")
    if big.ndim == 2:
        big = big[..., None]
    h, w, c = big.shape
    raw = b"".join(b"\x00" + big[y].tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 16, _COLOUR_TYPE[c], 0, 0, 0)
    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
                           + chunk(b"IEND", b""))


BABY = sorted((sr.DEFAULT_EVAL_ROOTS["set5"] / "HR").glob("*.png"))[0]


@pytest.fixture(scope="module")
def rgb():
    return np.asarray(Image.open(BABY).convert("RGB"))[:64, :80]


def test_16_bit_colour_and_gray_read_back_the_8_bit_pixels(tmp_path, rgb):
    write_png16(tmp_path / "c16.png", rgb.astype(np.uint16) * 257)
    gray = np.asarray(Image.fromarray(rgb).convert("L"))
    write_png16(tmp_path / "g16.png", gray.astype(np.uint16) * 257)
    np.testing.assert_array_equal(read_image(tmp_path / "c16.png").permute(1, 2, 0).numpy(), rgb)
    np.testing.assert_array_equal(read_image(tmp_path / "g16.png")[0].numpy(), gray)
    # a true 16-bit gradient spans the range instead of saturating
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (8, 1))
    write_png16(tmp_path / "ramp.png", ramp)
    got = read_image(tmp_path / "ramp.png")[0].numpy()
    assert got.min() == 0 and got.max() == 255 and abs(np.mean(got == 255) - 1 / 256) < 0.01


def test_palette_rgba_and_exif_rotation(tmp_path, rgb):
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=256).save(tmp_path / "p.png")
    pal = read_image(tmp_path / "p.png")
    assert pal.shape == (3, 64, 80) and np.abs(pal.permute(1, 2, 0).numpy().astype(int) - rgb).mean() < 8
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        from tasks.sr import data

        data._WARNED.discard("alpha")
        got = read_image(tmp_path / "a.png")
        read_image(tmp_path / "a.png")
    np.testing.assert_array_equal(got.permute(1, 2, 0).numpy(), rgb)
    assert sum("alpha channel dropped" in str(w.message) for w in seen) == 1  # said once
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    Image.fromarray(rgb).save(tmp_path / "r.jpg", exif=exif, quality=100)
    assert read_image(tmp_path / "r.jpg").shape == (3, 80, 64)


def test_broken_and_empty_files_are_named(tmp_path, rgb):
    (tmp_path / "empty.png").write_bytes(b"")
    Image.fromarray(rgb).save(tmp_path / "ok.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "ok.png").read_bytes()[:200])
    for name in ("empty.png", "cut.png"):
        with pytest.raises(DataError, match=name):
            read_image(tmp_path / name)


def test_eval_images_too_small_for_ssim_are_refused(tmp_path, rgb):
    Image.fromarray(rgb).save(tmp_path / "big.png")
    Image.fromarray(rgb[:14, :14]).save(tmp_path / "tiny.png")
    with pytest.raises(DataError, match="tiny is 14x14 pixels, too small for the 11x11 SSIM window"):
        load_eval_set(tmp_path, 2)


def _convert(src, dst, mode):
    """Every image of folder ``src`` written to ``dst`` as 16-bit, grayscale or RGBA PNG."""
    dst.mkdir()
    for path in sorted(src.iterdir()):
        with Image.open(path) as im:
            gray = im.mode == "L"
            img = np.asarray(im.convert("L" if gray else "RGB"))
        if mode == "16bit":  # grayscale stays one channel: it is scored on its gray values
            write_png16(dst / f"{path.stem}.png", img.astype(np.uint16) * 257)
        elif mode == "gray":
            Image.fromarray(img).convert("L").save(dst / f"{path.stem}.png")
        else:
            Image.fromarray(np.dstack([img, np.full(img.shape[:2], 200, np.uint8)]), "RGBA").save(dst / f"{path.stem}.png")
    return dst


def test_16_bit_training_and_eval_folders_give_the_same_pixels(tmp_path):
    from tasks.sr.data import TrainPatches

    for name in ("set5", "set14"):  # Set14 holds a grayscale image
        eval8 = load_eval_set(sr.DEFAULT_EVAL_ROOTS[name] / "HR", 2)
        eval16 = load_eval_set(_convert(sr.DEFAULT_EVAL_ROOTS[name] / "HR", tmp_path / f"{name}_16", "16bit"), 2)
        assert len(eval8) == len(eval16) and any(e.gray for e in eval16) == (name == "set14")
        for a, b in zip(eval8, eval16):
            assert a.name == b.name and (a.lr == b.lr).all() and (a.hr == b.hr).all()
    t91 = sorted(sr.DEFAULT_TRAIN_ROOT.iterdir())[:12]
    (tmp_path / "t8").mkdir()
    for p in t91:
        (tmp_path / "t8" / p.name).write_bytes(p.read_bytes())
    p8 = TrainPatches(tmp_path / "t8", 2, 48, seed=3)
    p16 = TrainPatches(_convert(tmp_path / "t8", tmp_path / "t16", "16bit"), 2, 48, seed=3)
    for (lr8, hr8), (lr16, hr16) in zip((p8.batch(8) for _ in range(3)), (p16.batch(8) for _ in range(3))):
        assert (lr8 == lr16).all() and (hr8 == hr16).all()  # the same batches: the same training, the same PSNR


@pytest.mark.parametrize("mode", ["gray", "rgba"])
def test_gray_and_rgba_training_folders_run(tmp_path, mode):
    from tasks.sr.data import TrainPatches

    (tmp_path / "t8").mkdir()
    for p in sorted(sr.DEFAULT_TRAIN_ROOT.iterdir())[:6]:
        (tmp_path / "t8" / p.name).write_bytes(p.read_bytes())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        patches = TrainPatches(_convert(tmp_path / "t8", tmp_path / mode, mode), 2, 48, seed=0)
    lr, hr = patches.batch(4)
    assert lr.shape == (4, 3, 24, 24) and hr.shape == (4, 3, 48, 48) and 0 <= float(lr.min()) <= float(lr.max()) <= 1
