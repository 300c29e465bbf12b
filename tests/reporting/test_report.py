"""Plots, visualizations and the HTML report, from demo results and from the COCO sample; the report
opened in headless Chromium (Debian's chromium package) must render its tables and images."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers import zoo_checkpoint

from panbench.cli import main
from panbench.data.demo import make_demo
from panbench.package import REPO_ROOT

pytestmark = pytest.mark.slow
GOLDEN = Path(__file__).parents[1] / "fixtures" / "fixture_record.json"  # invented numbers (tests/fixtures/README.md)


def assert_png(path: Path, min_w: int = 300, min_h: int = 200) -> None:
    from PIL import Image

    assert path.is_file(), path
    im = np.asarray(Image.open(path).convert("L"), np.float32)
    assert im.shape[1] >= min_w and im.shape[0] >= min_h, (path, im.shape)
    assert im.std() > 5, f"{path} looks blank"


@pytest.fixture(scope="module")
def demo_results(tmp_path_factory) -> Path:
    make_demo(REPO_ROOT / "data" / "demo")
    res = tmp_path_factory.mktemp("demo_results")
    # the two models viz compares (plots, viz and the page: of two runs as of three); no GFLOPs pass (no test here
    # reads the GFLOPs figure or column)
    assert main(["eval", "--model", "mask2former,panoptic-fpn", "--dataset", "demo", "--limit", "12", "--results",
                 str(res), "--no-progress", "--workers", "0", "--flops-images", "0"]) == 0
    return res


@pytest.fixture(scope="module")
def plotted(demo_results) -> Path:
    """The demo results after `panbench plot` (run once: the figures test and the browser test read it)."""
    assert main(["plot", "--results", str(demo_results)]) == 0
    return demo_results


def test_plots_from_demo_results(plotted) -> None:
    demo_results = plotted
    for name in ("pq_bars.png", "pq_vs_speed.png", "per_class_pq.png"):
        assert_png(demo_results / "plots" / "demo" / name)


def test_plots_from_a_coco_record(tmp_path) -> None:
    (tmp_path / "runs").mkdir()
    shutil.copy(GOLDEN, tmp_path / "runs")
    assert main(["plot", "--results", str(tmp_path)]) == 0
    assert_png(tmp_path / "plots" / "coco" / "pq_bars.png")


def test_viz_two_demo_models_with_disagreement_and_query_maps(demo_results) -> None:
    from PIL import Image

    assert main(["viz", "--model", "mask2former", "--model", "panoptic-fpn", "--dataset", "demo", "--image", "2003",
                 "--results", str(demo_results), "--figure-width", "single"]) == 0
    out = demo_results / "viz" / "2003_demo-mask2former_vs_demo-panoptic-fpn.png"
    assert_png(out, 385, 400)  # rows of two panels: overlays, disagreement, the top queries' mask maps
    assert Image.open(out).width == round(3.5 * 110)  # a column wide, at viz's 110 dpi


def test_viz_on_the_coco_sample(coco_sample, request, tmp_path) -> None:
    ckpt = zoo_checkpoint(request, "panoptic-fpn")  # the run's shared zoo-style checkpoint (read only)
    out = tmp_path / "viz.png"
    assert main(["viz", "--model", "panoptic-fpn", "--image", "142238", "--data-root", str(coco_sample),
                 "--checkpoint", str(ckpt), "--out", str(out)]) == 0
    assert_png(out, 600, 200)


@pytest.fixture(scope="module")  # module scope like demo_results, so that it is set up first
def chromium() -> str:
    """Debian's chromium; without it the browser test skips, except on CI (CI=true), where it fails."""
    path = shutil.which("chromium")
    if path is None:
        msg = "Debian's chromium is not installed (apt-get install chromium; .ci/run installs it)"
        if os.environ.get("CI") == "true":  # on CI the browser test must run, never skip
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def test_report_renders_in_headless_chromium(chromium, plotted) -> None:  # chromium first: checked first
    demo_results = plotted
    assert main(["report", "--results", str(demo_results)]) == 0
    report = demo_results / "report.html"
    text = report.read_text()
    assert "demo-mask2former" in text and "resolved config" in text and "sha256" in text
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          f"--user-data-dir={demo_results / 'chromium'}", "--virtual-time-budget=10000",
                          "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120).stdout
    body = re.search(r"<body[^>]*>", dom).group(0)
    n_tables = int(re.search(r'data-tables="(\d+)"', body).group(1))
    n_images = int(re.search(r'data-images="(\d+)"', body).group(1))
    rendered = int(re.search(r'data-images-rendered="(\d+)"', body).group(1))
    assert n_tables >= 2 and n_images >= 4 and rendered == n_images


def _dom_body(chromium: str, page: Path, profile: Path, width: int = 1400) -> str:
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          f"--user-data-dir={profile}", "--virtual-time-budget=10000", f"--window-size={width},2000",
                          "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    return re.search(r"<body[^>]*>", dom).group(0)


@pytest.fixture(scope="module")
def eight_run_report(tmp_path_factory) -> Path:
    """Eight runs with long names, --cfg-options and a post-processing with parameters, the analyses of each,
    on MIN_IMAGES images (the fewest that get intervals and paired differences, so that the widest table,
    ``--ci``'s, is there); the report's path."""
    import json

    from analysis_records import add_run, ground_truth

    from panbench.analysis.bootstrap import MIN_IMAGES

    tmp_path = tmp_path_factory.mktemp("eight_runs")
    gt_json, images = ground_truth(tmp_path / "data", n_images=MIN_IMAGES)
    names = ["demo-mask2former", "demo-maskformer", "demo-panoptic-fpn", "hf-mask2former_swin-t",
             "mask2former_swin-l-p4-w12-384-in21k_8xb2-lsj-100e_coco-panoptic", "demo-mask2former",
             "demo-mask2former", "Mask DINO (detectron2) saved predictions"]
    for k, name in enumerate(names):
        rec = add_run(tmp_path, name, gt_json, images, pred_seed=k, boundary=k == 3,
                      date=f"2001-01-01T00:00:0{k}+00:00", postprocess="maskwise(alpha=0.5,beta=0.3)" if k == 6
                      else "default")
        if k == 5:  # an ablation: --cfg-options in the record's provenance
            path = tmp_path / rec["record"]
            rec["provenance"]["cfg_options"] = {"model.test_cfg.object_mask_thr": 0.95, "model.test_cfg.iou_thr": 0.95}
            path.write_text(json.dumps(rec))
    assert main(["report", "--results", str(tmp_path)]) == 0
    return tmp_path / "report.html"


def test_report_tables_fit_1400_px_with_eight_runs(chromium, eight_run_report) -> None:
    """Every table that shows without opening a fold ends within 1400 px in Chromium."""
    body = _dom_body(chromium, eight_run_report, eight_run_report.parent / "chromium")
    shown = int(re.search(r'data-shown-tables="(\d+)"', body).group(1))
    widest = int(re.search(r'data-widest-table="(\d+)"', body).group(1))
    assert shown >= 7 and widest <= 1400, (shown, widest)
    assert "paired differences</h4>" in eight_run_report.read_text()


def _framed_body(chromium: str, page: Path, width: int) -> str:
    """The report's ``<body>`` tag after loading in a frame ``width`` CSS pixels wide (Chromium's window is
    at least 500 px wide; a frame is the viewport a phone gives), its check attributes copied out of the frame."""
    outer = page.parent / f"frame-{width}.html"
    outer.write_text(f"<!doctype html><html><body style='margin:0'><iframe id='f' src='{page.name}' "
                     f"style='width:{width}px;height:1600px;border:0'></iframe><script>"
                     "const f = document.getElementById('f'); f.addEventListener('load', () => setTimeout(() => {"
                     "Object.assign(document.body.dataset, f.contentDocument.body.dataset);}, 100));"
                     "</script></body></html>")
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          "--allow-file-access-from-files", f"--user-data-dir={page.parent / 'chromium-frame'}",
                          "--virtual-time-budget=10000", "--window-size=800,1700", "--dump-dom", outer.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    return re.search(r"<body[^>]*>", dom).group(0)


def test_report_at_400_px_scrolls_wide_tables_in_their_box_with_a_cue(chromium, eight_run_report) -> None:
    """On a phone (400 CSS px): the page itself is no wider (the wide tables scroll in their boxes), and every
    table wider than its box shows the scroll cue; the page has a viewport meta tag."""
    assert "<meta name='viewport' content='width=device-width, initial-scale=1'>" in eight_run_report.read_text()
    body = _framed_body(chromium, eight_run_report, 400)
    width = int(re.search(r'data-page-width="(\d+)"', body).group(1))
    over = int(re.search(r'data-overflowing="(\d+)"', body).group(1))
    cued = int(re.search(r'data-cued="(\d+)"', body).group(1))
    assert width <= 400 and over >= 3 and cued == over, (width, over, cued)
