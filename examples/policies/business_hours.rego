package jupyter_securellm.authz

# Chat only during business hours, Monday to Friday, 08:00-19:00 in c.SecureLLM.policy_timezone.
# input.time is computed by the server in that zone (weekday: Monday 1 .. Sunday 7), so daylight
# saving time and weekends are right, which the seed's bare `time.hour` rule (UTC) was not.
business_start := 8

business_end := 19

weekend := {6, 7}

deny contains msg if {
	input.action == "chat"
	input.time.weekday in weekend
	msg := sprintf("LLM calls are not allowed on weekends (%v in %v)", [input.time.date, input.time.timezone])
}

deny contains msg if {
	input.action == "chat"
	not input.time.weekday in weekend
	not within_hours(input.time.hour)
	msg := sprintf("LLM calls are allowed 08:00-19:00 %v only, Monday to Friday", [input.time.timezone])
}

within_hours(h) if {
	h >= business_start
	h < business_end
}
