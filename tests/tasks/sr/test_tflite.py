"""TFLite (LiteRT) export: the PixelShuffle stand-in is exact, and each precision's file runs in
the LiteRT interpreter at any input size, as close to PyTorch as its precision allows."""

import numpy as np
import pytest
import torch

import tasks.sr as sr
from spaces.sr import WDSRBArch
from tasks.litert import output_snr_db
from tasks.sr.tflite import PRECISIONS, TFLiteModule, export_tflite, exportable, shuffle_as_conv

ARCH = WDSRBArch.from_dict({"scale": 2, "channels": 12, "blocks": [[24, 12], [16, 8]]})


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_the_transposed_convolution_is_the_pixel_shuffle(scale):
    shuffle = torch.nn.PixelShuffle(scale)
    x = torch.randn(2, 3 * scale * scale, 7, 5)
    assert torch.equal(shuffle_as_conv(shuffle, 3 * scale * scale)(x), shuffle(x))


def test_the_exportable_copy_computes_the_same_and_leaves_the_model_alone():
    model = sr.build_model(ARCH).eval()
    x = torch.rand(1, 3, 19, 23)
    with torch.no_grad():
        assert torch.allclose(exportable(model)(x), model(x), atol=1e-6)
    assert any(isinstance(m, torch.nn.PixelShuffle) for m in model.modules())


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    pytest.importorskip("litert_torch", reason="the tflite extra is part of .[dev]")
    torch.manual_seed(0)
    model = sr.build_model(ARCH).eval()
    gen = torch.Generator().manual_seed(1)
    calib = [torch.rand(1, 3, 32, 32, generator=gen) for _ in range(16)]
    out = tmp_path_factory.mktemp("tflite")
    return model, {p: export_tflite(model, out / f"{p}.tflite", p, calibration=lambda k: calib) for p in PRECISIONS}


@pytest.mark.slow  # three conversions (litert-torch): ~10 s
@pytest.mark.parametrize("precision,atol", [("fp32", 1e-5), ("fp16", 2e-3), ("int8", 0.08)])
def test_each_precision_runs_at_any_size_close_to_pytorch(exported, precision, atol):
    model, files = exported
    runner = TFLiteModule(files[precision])
    for hw in ((21, 17), (48, 64)):
        x = torch.rand(1, 3, *hw, generator=torch.Generator().manual_seed(hw[0]))
        with torch.no_grad():
            want = model(x)
        got = runner(x)
        assert got.shape == want.shape
        assert float((got - want).abs().max()) <= atol, (precision, hw, float((got - want).abs().max()))


@pytest.mark.slow
def test_int8_is_smaller_and_really_integer(exported):
    _, files = exported
    assert files["int8"].stat().st_size < files["fp32"].stat().st_size
    detail = TFLiteModule(files["int8"]).interpreter.get_input_details()[0]
    assert detail["dtype"] == np.int8 and detail["quantization"][0] > 0


def test_int8_without_calibration_is_refused(tmp_path):
    pytest.importorskip("litert_torch")
    with pytest.raises(ValueError, match="calibration"):
        export_tflite(sr.build_model(ARCH), tmp_path / "m.tflite", "int8")


@pytest.mark.slow  # three INT8 calibrations: ~10 s
def test_int8_keeps_the_calibration_closest_on_held_out_inputs(tmp_path):
    pytest.importorskip("litert_torch", reason="the tflite extra is part of .[dev]")
    torch.manual_seed(0)
    model = sr.build_model(ARCH).eval()
    gen = torch.Generator().manual_seed(2)
    # samples that read ever wider input ranges: the narrow ones clip the held-out inputs
    samples = [[torch.rand(1, 3, 32, 32, generator=gen) * (0.3 + 0.35 * k) for _ in range(8)] for k in range(3)]
    held_out = [torch.rand(1, 3, 32, 32, generator=gen) for _ in range(4)]
    record = {}
    path = export_tflite(model, tmp_path / "int8.tflite", "int8", calibration=lambda k: samples[k], candidates=3,
                         held_out=held_out, record=record)
    snr = record["held_out_snr_db"]
    assert len(snr) == 3 and record["chosen"] == int(np.argmax(snr)) == 2, record
    assert output_snr_db(exportable(model), path.read_bytes(), held_out) == pytest.approx(max(snr), abs=1e-3)
