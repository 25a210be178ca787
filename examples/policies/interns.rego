package jupyter_securellm.authz

# Interns may call models but may not read secrets with secrets.get().
deny contains "interns may not read secrets with secrets.get()" if {
	input.action == "secrets.get"
	"interns" in input.groups
}
