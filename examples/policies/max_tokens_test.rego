package jupyter_securellm.authz_test

test_max_tokens_cases := [
	{"input": {"action": "chat", "model": "gpt-mini", "groups": [], "request": {"max_tokens": 100}, "time": {"hour": 10, "minute": 0, "weekday": 1, "date": "2026-11-30", "timezone": "UTC"}}, "denied": false},
	{"input": {"action": "chat", "model": "gpt-mini", "groups": [], "request": {"max_tokens": 8000}, "time": {"hour": 10, "minute": 0, "weekday": 1, "date": "2026-11-30", "timezone": "UTC"}}, "deny": ["max_tokens 8000 exceeds the limit of 4096 per request"]},
	{"input": {"action": "chat", "model": "gpt-mini", "groups": [], "request": {"max_tokens": null}, "time": {"hour": 10, "minute": 0, "weekday": 1, "date": "2026-11-30", "timezone": "UTC"}}, "deny": ["set max_tokens on every request (at most 4096)"]},
]
