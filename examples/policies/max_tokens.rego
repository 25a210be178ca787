package jupyter_securellm.authz

# (`null > 4096` is true in Rego: compare numbers only.)
# At most 4096 output tokens per request, and max_tokens must be set (so budgets can estimate).
max_tokens_per_request := 4096

deny contains msg if {
	input.action == "chat"
	is_number(input.request.max_tokens)
	input.request.max_tokens > max_tokens_per_request
	msg := sprintf("max_tokens %v exceeds the limit of %v per request", [input.request.max_tokens, max_tokens_per_request])
}

deny contains "set max_tokens on every request (at most 4096)" if {
	input.action == "chat"
	not is_number(input.request.max_tokens)
}
