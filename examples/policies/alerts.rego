package jupyter_securellm.authz

# While a high-severity anomaly alert is active for this user, chat and secrets.get are refused
# (status and models stay open so the user can see why).
deny contains msg if {
	input.action in {"chat", "secrets.get"}
	some a in input.alerts
	a.severity == "high"
	msg := sprintf("a security alert is active for your account (%v since %v); ask your admin", [a.kind, a.since])
}
