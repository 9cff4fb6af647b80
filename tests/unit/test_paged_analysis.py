"""analyze_experiment's passes over pages (service/paged_analysis.py): any page size gives the same
analysis as one page (the cap, every figure, the digest), the always-valid ``sequential`` figures are
there and wider than the fixed-horizon interval, and a restriction list is checked across pages."""
from dataclasses import replace

import pytest

from offerlab.domain.errors import InvalidArgument
from offerlab.domain.metrics import Metric
from offerlab.service.analytics import compute_analysis
from tests.unit.test_analysis_compute import T0, experiment, inputs, price_test, row


def same(a, b, path="analysis"):
    """Equal, floats to 1e-9 relative (page sums add in another order); everything else exactly."""
    if isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12), path
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{path}[{i}]")
    else:
        assert a == b, path


def paged(rows, size):
    ordered = sorted(rows, key=lambda r: r.user_id)
    return lambda: iter([ordered[i:i + size] for i in range(0, len(ordered), size)])


def with_covariates(rows):
    return [replace(r, pre_exposure={"purchaseAmount": float(i % 7)}) for i, r in enumerate(rows)]


@pytest.mark.parametrize("size", [1, 37, 1000])
@pytest.mark.parametrize("metric", [Metric.NET_LTV, Metric.CONVERSION_RATE, Metric.REFUND_RATE])
def test_pages_of_any_size_give_the_one_page_analysis(size, metric):
    rows = sorted(with_covariates(price_test(n=600)), key=lambda r: r.user_id)
    rows[5] = replace(rows[5], sandbox=True)
    one = compute_analysis(inputs(rows, metric=metric, fraud={rows[9].user_id: 0.99}))
    many = compute_analysis(inputs(rows, metric=metric, fraud={rows[9].user_id: 0.99}), paged(rows, size))
    assert many.pop("analysis_passes") >= 1 and one.pop("analysis_passes") >= 1
    same(many, one)
    assert many["inputs_digest"] == one["inputs_digest"] and many["winsorize_cap"] == one["winsorize_cap"]


def test_the_analysis_carries_always_valid_figures():
    result = compute_analysis(inputs(price_test(n=3000)))
    seq = result["sequential"]
    lo, hi = seq["confidenceInterval"]
    fixed_lo, fixed_hi = result["confidence_interval"]
    assert lo < fixed_lo < fixed_hi < hi  # a confidence sequence is wider than a one-look interval
    assert 0 <= seq["pValue"] <= 1 and seq["pValue"] >= result["p_value"]


def test_a_capped_mean_needs_at_most_three_passes():
    result = compute_analysis(inputs(price_test(n=2000)), paged(price_test(n=2000), 100))
    assert result["winsorize_cap"] is not None and result["analysis_passes"] <= 3


def test_restriction_lists_are_checked_across_pages():
    rows = [row(f"C{i:03d}", "CONTROL", 1.0) for i in range(50)] + [row(f"T{i:03d}", "TREATMENT", 2.0) for i in range(50)]
    with pytest.raises(InvalidArgument) as err:
        compute_analysis(inputs(rows, treatment_user_ids=("T001", "C002", "nobody")), paged(rows, 7))
    assert [f["path"] for f in err.value.details["fields"]] == ["treatmentUserIds.1", "treatmentUserIds.2"]
    ok = compute_analysis(inputs(rows, treatment_user_ids=("T001", "T040")), paged(rows, 7))
    assert ok["sample_sizes"] == {"CONTROL": 50, "TREATMENT": 2}
