"""``export:`` is checked before any work: unknown formats or precisions, and a TFLite export
without the tflite extra, are one-line errors that say the fix."""

import importlib.util

import pytest

from search.config.compose import compose_config
from search.errors import UserError
from search.settings import ExportSettings


def settings(*overrides):
    return ExportSettings.from_cfg(compose_config(["task=sr", "device=s21", *overrides]))


def test_the_default_ships_onnx():
    assert settings().formats == ("onnx",)


@pytest.mark.parametrize("override,named", [("export.formats=[onnx,coreml]", "export.formats"),
                                            ("export.precision=[int4]", "export.precision"),
                                            ("export.formats=[]", "export.formats")])
def test_unknown_choices_name_the_setting(override, named):
    with pytest.raises(UserError, match=named) as err:
        settings(override)
    assert "\n" not in str(err.value)


def test_tflite_without_the_extra_says_how_to_install_it(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "litert_torch" else real(name, *a))
    with pytest.raises(UserError, match=r"pip install -e '\.\[tflite\]'"):
        settings("export.formats=[onnx,tflite]")
