package jupyter_securellm.authz_test

import data.jupyter_securellm.authz

test_research_may_use_claude := {"input": {"action": "chat", "model": "claude", "groups": ["research"], "request": {"max_tokens": 100}, "time": {"hour": 10, "minute": 0, "weekday": 1, "date": "2026-11-30", "timezone": "UTC"}}, "denied": false}

test_data_science_may_not_use_claude := {"input": {"action": "chat", "model": "claude", "groups": ["data-science"], "request": {"max_tokens": 100}, "time": {"hour": 10, "minute": 0, "weekday": 1, "date": "2026-11-30", "timezone": "UTC"}}, "deny": ["model claude is not allowed for your groups"]}

test_no_group_gets_everyone_models := [
	{"input": {"action": "chat", "model": "gpt-mini", "groups": [], "request": {"max_tokens": 100}, "time": {"hour": 10, "minute": 0, "weekday": 1, "date": "2026-11-30", "timezone": "UTC"}}, "denied": false},
	{"input": {"action": "chat", "model": "gpt", "groups": [], "request": {"max_tokens": 100}, "time": {"hour": 10, "minute": 0, "weekday": 1, "date": "2026-11-30", "timezone": "UTC"}}, "deny_contains": "model gpt is not allowed"},
]

test_several_groups_union := {"input": {"action": "chat", "model": "claude", "groups": ["data-science", "research"], "request": {"max_tokens": 100}, "time": {"hour": 10, "minute": 0, "weekday": 1, "date": "2026-11-30", "timezone": "UTC"}}, "denied": false}
