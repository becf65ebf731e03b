"""The baselines' published figures come with their source, and the report puts them beside the
figures trained here."""

from search.report import _published_rows
from tasks.sr.published import published


def test_published_figures_carry_their_source():
    fsrcnn = published("fsrcnn", 2)
    assert fsrcnn["psnr"] == {"set5": 37.00, "set14": 32.63} and "FSRCNN" in fsrcnn["source"]
    assert published("espcn", 2) is None  # its paper reports x3 and x4 only
    assert published("bicubic", 2)["psnr"]["set5"] == 33.66


def test_the_report_lists_trained_and_published_side_by_side():
    baselines = {"fsrcnn": {"eval": {"set5": {"psnr": 36.1}}, "published": published("fsrcnn", 2),
                            "recipe": "task.final (2000 steps, T91)"},
                 "espcn": {"eval": {"set5": {"psnr": 35.2}}, "published": None}}
    rows = _published_rows(baselines, ["set5"])
    assert rows[2].startswith("Trained here: task.final (2000 steps, T91).")
    assert "| fsrcnn | set5 | 36.10 | 37.00 | Dong, Loy, Tang" in "\n".join(rows)
    assert "| espcn | set5 | 35.20 | n/a | not reported by its paper |" in rows
