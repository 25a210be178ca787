package jupyter_securellm.authz

# Which model aliases each group may use. A user in several groups may use the union.
# Users in no listed group may use only the models in "everyone".
models_by_group := {
	"everyone": {"gpt-mini"},
	"data-science": {"gpt-mini", "gpt"},
	"research": {"gpt-mini", "gpt", "claude"},
}

allowed_models contains m if {
	some m in models_by_group.everyone
}

allowed_models contains m if {
	some g in input.groups
	some m in models_by_group[g]
}

deny contains msg if {
	input.action == "chat"
	not input.model in allowed_models
	msg := sprintf("model %v is not allowed for your groups", [input.model])
}
