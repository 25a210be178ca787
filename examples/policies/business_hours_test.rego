package jupyter_securellm.authz_test

# Test cases: the runner sets each case's input and compares data.jupyter_securellm.authz.deny.
# (regopy 1.5.2 crashes on `with input as`, so cases are data; see docs/policy.md.)
import data.jupyter_securellm.authz

test_within_hours_helper if {
	authz.within_hours(8)
	authz.within_hours(18)
	not authz.within_hours(19)
	not authz.within_hours(7)
}

test_tuesday_morning_allowed := {"input": {"action": "chat", "model": "gpt-mini", "groups": [], "request": {"max_tokens": 100}, "time": {"hour": 10, "minute": 0, "weekday": 2, "date": "2026-11-24", "timezone": "Europe/Paris"}}, "deny": []}

test_tuesday_night_denied := {"input": {"action": "chat", "model": "gpt-mini", "groups": [], "request": {"max_tokens": 100}, "time": {"hour": 22, "minute": 5, "weekday": 2, "date": "2026-11-24", "timezone": "Europe/Paris"}}, "deny": ["LLM calls are allowed 08:00-19:00 Europe/Paris only, Monday to Friday"]}

test_saturday_denied := {"input": {"action": "chat", "model": "gpt-mini", "groups": [], "request": {"max_tokens": 100}, "time": {"hour": 11, "minute": 0, "weekday": 6, "date": "2026-11-28", "timezone": "Europe/Paris"}}, "deny_contains": "weekends"}

test_status_on_sunday_allowed := {"input": {"action": "status", "groups": [], "time": {"hour": 3, "minute": 0, "weekday": 7, "date": "2026-11-29", "timezone": "Europe/Paris"}}, "denied": false}
