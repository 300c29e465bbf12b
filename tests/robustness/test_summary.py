"""mPC, rPC and the group means on hand-made records equal their definitions (Michaelis et al. 2019:
mPC = mean over corruptions and severities, rPC = mPC / clean), and a summary pairs a model's corrupted
runs with its clean run on the same images only."""

from __future__ import annotations

import pytest

from panbench.robustness.corruptions import GROUP_OF
from panbench.robustness.summary import summarize


def record(model: str, pq: float, th: float, st: float, corruption: tuple[str, int] | None = None,
           fingerprint: str = "fp1", date: str = "2026-01-01T00:00:00+0000") -> dict:
    r = {"model": model, "postprocess": "default", "dataset": "demo", "n_images": 10, "date": date,
         "batch_size": 1, "amp": "fp32", "metrics": {"PQ": pq, "PQ_th": th, "PQ_st": st},
         "provenance": {"dataset": {"fingerprint": fingerprint}}, "record": f"runs/{model}-{corruption}.json"}
    if corruption:
        name, sev = corruption
        r["dataset"] = f"demo+{name}-{sev}"
        r["corruption"] = {"name": name, "severity": sev, "group": GROUP_OF[name], "implementation": "x"}
        r["timings"] = {"corrupt_s": 0.5, "corrupt_images": 10}
    return r


def test_mpc_rpc_and_group_means_equal_their_definitions() -> None:
    runs = {("gaussian_noise", 1): (40.0, 30.0, 50.0), ("gaussian_noise", 3): (20.0, 10.0, 30.0),
            ("fog", 1): (35.0, 33.0, 37.0), ("fog", 3): (25.0, 21.0, 29.0), ("contrast", 2): (10.0, 12.0, 8.0)}
    recs = [record("m", 50.0, 40.0, 60.0)] + [record("m", *v, corruption=k) for k, v in runs.items()]
    (s,) = summarize(recs)
    pq = [v[0] for v in runs.values()]
    mpc = sum(pq) / 5
    assert s["clean"]["PQ"] == 50.0 and s["n_runs"] == 5
    assert s["mPC"]["PQ"] == pytest.approx(mpc) and s["mPC"]["PQ"] == pytest.approx(26.0)
    assert s["mPC"]["PQ_th"] == pytest.approx((30 + 10 + 33 + 21 + 12) / 5)
    assert s["mPC"]["PQ_st"] == pytest.approx((50 + 30 + 37 + 29 + 8) / 5)
    assert s["rPC"]["PQ"] == pytest.approx(100 * 26.0 / 50.0)
    assert s["rPC"]["PQ_th"] == pytest.approx(100 * s["mPC"]["PQ_th"] / 40.0)
    assert s["groups"]["noise"]["PQ"] == pytest.approx(30.0)
    assert s["groups"]["weather"]["PQ"] == pytest.approx(30.0)
    assert s["groups"]["digital"]["PQ_st"] == pytest.approx(8.0)
    assert "blur" not in s["groups"]
    assert s["corruptions"] == ["gaussian_noise", "fog", "contrast"] and s["severities"] == [1, 2, 3]
    assert s["runs"][0]["corrupt_ms_per_image"] == pytest.approx(50.0)


def test_a_summary_takes_the_newest_run_of_each_corruption_and_only_runs_on_the_same_images() -> None:
    recs = [record("m", 50.0, 40.0, 60.0),
            record("m", 10.0, 10.0, 10.0, ("fog", 2)),
            record("m", 30.0, 30.0, 30.0, ("fog", 2), date="2026-01-02T00:00:00+0000"),  # the newer fog-2
            record("m", 1.0, 1.0, 1.0, ("fog", 3), fingerprint="fp2"),  # other images: no clean partner
            record("n", 60.0, 60.0, 60.0)]  # no corrupted run: no summary
    (s,) = summarize(recs)
    assert s["model"] == "m" and s["n_runs"] == 1
    assert s["mPC"]["PQ"] == 30.0 and s["rPC"]["PQ"] == pytest.approx(60.0)


def test_models_are_summarized_apart() -> None:
    recs = [record("a", 50.0, 50.0, 50.0), record("b", 80.0, 80.0, 80.0),
            record("a", 25.0, 25.0, 25.0, ("snow", 1)), record("b", 20.0, 20.0, 20.0, ("snow", 1))]
    by = {s["model"]: s for s in summarize(recs)}
    assert by["a"]["rPC"]["PQ"] == pytest.approx(50.0) and by["b"]["rPC"]["PQ"] == pytest.approx(25.0)
