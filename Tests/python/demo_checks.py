"""The checks of `nsae demo`'s part 2 (the built-in GPT-2), shared by its quick run (test_builtin_model.py) and the
README's main command, which runs the full demo (test_demo_and_examples.py)."""
import math

from conftest import table


def check_part_two(results, out):
    """Part 2's statements in results.json, and the files it wrote under `out`, at any size the demo runs."""
    assert results["settings"]["gpt2"] is True
    by_code = {s["code"]: s for s in results["statements"]}

    stats = table(by_code["stats mlp"])
    assert [row["layer"] for row in stats] == [0, 1, 2, 3]
    assert all(row["count"] > 30_000 and row["mean"] > 0 for row in stats)

    compare = table(by_code["mlp_cmp"])
    assert {row["sae"] for row in compare} == {"mlp_base", "mlp_norm"} and len(compare) == 8
    for row in compare:
        assert 0 < row["l0"] < 1024 and row["explained_variance"] <= 1

    splices = [s for s in results["statements"] if s["code"].startswith("splice ")]
    assert len(splices) == 2
    for s in splices:
        rows = table(s)
        assert [row["layer"] for row in rows] == [0, 1, 2, 3]
        for row in rows:
            # A trained model: ablating an MLP output hurts, and every figure is a finite number.
            assert row["ce_clean"] < row["ce_zero"], row
            assert all(isinstance(row[k], (int, float)) and math.isfinite(row[k])
                       for k in ("ce_recon", "score", "kl_zero", "kl_recon", "kl_score")), row

    check_frontiers(results)

    cards = [s for s in results["statements"] if s["code"].startswith("feature ")]
    assert len(cards) == 3 and all(s["displays"] or s["value"] for s in cards)
    html = (out / "report.html").read_text()
    assert "Built-in GPT-2" in html and html.count("<svg") >= 5
    assert (out / "mlp-nsae").is_dir() and (out / "mlp-relu").is_dir()


def check_frontiers(results):
    """Part 2 trains a sweep of three alphas per kind and compares their frontiers, also at matched L0."""
    statements = results["statements"]
    frontiers = [s for s in statements if s["code"].startswith("frontier mlp_relu mlp_nsae")]
    assert len(frontiers) == 2
    for s in frontiers:
        rows = table(s)
        metric = "ce_score" if "metric=ce_score" in s["code"] else "explained_variance"
        assert s["value"]["columns"] == ["sweep", "alpha", "layer", "l0", metric]
        assert len(rows) == 24, "2 sweeps × 3 alphas × 4 layers"
        assert {r["alpha"] for r in rows if r["sweep"] == "mlp_relu"} == {0.3, 1, 3}
        assert {r["alpha"] for r in rows if r["sweep"] == "mlp_nsae"} == {0.001, 0.003, 0.01}
        for r in rows:
            assert 0 < r["l0"] < 1024 and math.isfinite(r[metric]) and r[metric] <= 1, r
        # One figure per layer, a curve per sweep with its grid values labelled, L0 on a log axis.
        assert len(s["displays"]) == 4
        for figure in s["displays"]:
            assert figure["log_x"] is True and [c["label"] for c in figure["series"]] == ["mlp_relu (alpha)", "mlp_nsae (alpha)"]
            assert all(len(c["point_labels"]) == 3 for c in figure["series"])
        # Within a layer, a larger alpha never gives a much denser code (L0 falls with alpha, up to noise).
        for sweep in ("mlp_relu", "mlp_nsae"):
            for layer in range(4):
                l0 = [r["l0"] for r in sorted((r for r in rows if r["sweep"] == sweep and r["layer"] == layer), key=lambda r: r["alpha"])]
                assert l0[0] > l0[-1], (sweep, layer, l0)
    matches = [s for s in statements if s["code"].startswith("match mlp_relu mlp_nsae")]
    assert len(matches) == 2
    for s in matches:
        rows = table(s)
        assert {r["row"] for r in rows} <= {"matched", "nearest", "no_overlap"}
        assert sorted(r["layer"] for r in rows if r["row"] == "nearest") == [0, 1, 2, 3]
        for r in rows:
            if r["row"] == "no_overlap":
                assert r["metric_a"] is None and "do not overlap" in r["at"], r
                continue
            assert r["l0_ratio"] >= 1 and math.isfinite(r["metric_a"]) and math.isfinite(r["metric_b"]), r
            assert abs(r["b_minus_a"] - (r["metric_b"] - r["metric_a"])) < 1e-9
            if r["row"] == "matched":
                assert r["l0_a"] == r["l0_b"] and r["l0_ratio"] == 1, r
    fits = [s for s in statements if s["code"] in ("fit mlp_relu mlp", "fit mlp_nsae mlp")]
    assert len(fits) == 2 and all(len(table(s)) == 3 for s in fits)
