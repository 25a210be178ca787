package jupyter_securellm.authz_test

test_intern_secret_denied := {"input": {"action": "secrets.get", "groups": ["interns"], "secret_path": "db/warehouse", "time": {"hour": 10, "minute": 0, "weekday": 1, "date": "2026-11-30", "timezone": "UTC"}}, "deny": ["interns may not read secrets with secrets.get()"]}

test_staff_secret_allowed := {"input": {"action": "secrets.get", "groups": ["data-science"], "secret_path": "db/warehouse", "time": {"hour": 10, "minute": 0, "weekday": 1, "date": "2026-11-30", "timezone": "UTC"}}, "denied": false}
