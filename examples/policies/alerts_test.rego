package jupyter_securellm.authz_test

test_alert_cases := [
	{"input": {"action": "chat", "model": "gpt-mini", "groups": [], "request": {"max_tokens": 10}, "alerts": [{"id": "a1", "kind": "spike", "severity": "high", "since": "2026-11-30T10:00:00Z", "message": "x"}], "time": {"hour": 10, "minute": 0, "weekday": 1, "date": "2026-11-30", "timezone": "UTC"}}, "deny": ["a security alert is active for your account (spike since 2026-11-30T10:00:00Z); ask your admin"]},
	{"input": {"action": "status", "groups": [], "alerts": [{"id": "a1", "kind": "spike", "severity": "high", "since": "2026-11-30T10:00:00Z", "message": "x"}], "time": {"hour": 10, "minute": 0, "weekday": 1, "date": "2026-11-30", "timezone": "UTC"}}, "denied": false},
	{"input": {"action": "chat", "model": "gpt-mini", "groups": [], "request": {"max_tokens": 10}, "alerts": [{"id": "a2", "kind": "new_address", "severity": "low", "since": "2026-11-30T10:00:00Z", "message": "x"}], "time": {"hour": 10, "minute": 0, "weekday": 1, "date": "2026-11-30", "timezone": "UTC"}}, "denied": false},
]
