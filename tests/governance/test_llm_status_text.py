"""`%llm status` shows the budget per dimension and the active alerts in words (kernel side, no server)."""
from jupyter_securellm.kernel.widgets import status_rows


def test_budget_and_alerts_rows():
    rows = dict(status_rows({
        "broker": "ok", "budget": {
            "daily_tokens": {"period": "day", "limit": 5000, "used": 1200, "left": 3800,
                             "resets_at": "2026-12-01T00:00:00Z"},
            "monthly_usd": {"period": "month", "limit": 20, "used": 1.5, "left": 18.5,
                            "resets_at": "2026-12-31T23:00:00Z"}},
        "alerts": [{"id": "a1", "kind": "spike", "severity": "high", "since": "2026-11-30T10:00:00Z",
                    "message": "50000 tokens this hour"}]}))
    assert rows["Budget"] == ("daily_tokens 1,200 of 5,000 used, 3,800 left (resets 2026-12-01T00:00:00Z); "
                              "monthly_usd $1.5 of $20 used, $18.5 left (resets 2026-12-31T23:00:00Z)")
    assert rows["Alerts"] == "[high] spike since 2026-11-30T10:00:00Z: 50000 tokens this hour"


def test_no_budget_no_alerts():
    rows = dict(status_rows({"broker": "ok", "budget": None, "alerts": []}))
    assert rows["Budget"] == "no limit configured" and rows["Alerts"] == "none"
