"""The package's layout holds: no import circle, and one protocol on both sides of the kernel/server line.

grimp reads every import statement of every module (function-level imports included), so a lazy
import that closes a circle is caught too.
"""
from __future__ import annotations

import fnmatch

import grimp


def _graph():
    return grimp.build_graph("jupyter_securellm", cache_dir=None)


def test_the_import_graph_has_no_circle():
    g = _graph()
    circles = []
    for module in sorted(g.modules):
        for imported in sorted(g.find_modules_directly_imported_by(module)):
            chain = g.find_shortest_chain(importer=imported, imported=module)
            if chain:
                circles.append(" -> ".join((module,) + tuple(chain)))
    assert circles == [], "import circles:\n" + "\n".join(circles)


def test_the_walk_sees_lazy_imports():
    """The assertion above can fail: a function-level import is an edge of the graph."""
    g = _graph()
    assert g.direct_import_exists(importer="jupyter_securellm.server.app", imported="jupyter_securellm.server.contents")
    assert g.direct_import_exists(importer="jupyter_securellm.kernel.magics",
                                  imported="jupyter_securellm.kernel.backend")


def test_protocol_is_stdlib_only_and_imported_by_both_sides():
    g = _graph()
    assert g.find_modules_directly_imported_by("jupyter_securellm.protocol") == set()
    users = g.find_modules_that_directly_import("jupyter_securellm.protocol")
    assert {"jupyter_securellm.kernel.client", "jupyter_securellm.kernel.envguard",
            "jupyter_securellm.server.kernels", "jupyter_securellm.server.handlers"} <= users


def test_kernel_guard_and_server_sanitizer_use_the_one_deny_list():
    from jupyter_securellm import protocol
    from jupyter_securellm.kernel import envguard
    from jupyter_securellm.server import app, kernels

    assert tuple(envguard.EnvGuard().deny) == protocol.ENV_DENY_PATTERNS
    assert tuple(kernels.DEFAULT_ENV_DENY_PATTERNS) == protocol.ENV_DENY_PATTERNS
    assert tuple(app.SecureLLM().env_deny_patterns) == protocol.ENV_DENY_PATTERNS
    # the union of the two former lists: every name either side used to refuse is still refused
    former = ["OPENAI_API_KEY", "MY_APIKEY", "DB_SECRET", "GITHUB_TOKEN", "X_TOKEN_Y", "PGPASSWORD", "FTP_PASSWD",
              "GCP_CREDENTIALS", "SSH_PRIVATE_KEY", "S3_ACCESS_KEY", "GH_PAT", "X_AUTH_KEY", "DB_CONNECTION_STRING",
              "AWS_REGION", "AZURE_OPENAI_ENDPOINT", "VAULT_TOKEN", "BAO_TOKEN", "JUPYTERHUB_API_TOKEN",
              "JPY_API_TOKEN", "JUPYTER_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS", "HF_TOKEN", "LITELLM_MASTER_KEY"]
    sanitizer = kernels.EnvSanitizer(kernels.DEFAULT_ENV_DENY_PATTERNS)
    for name in former:
        assert sanitizer.denied(name), name
        assert any(fnmatch.fnmatchcase(name, p) for p in envguard.DEFAULT_DENY), name


def test_error_types_are_the_protocols_on_both_sides():
    from jupyter_securellm import protocol
    from jupyter_securellm.kernel.client import error_from_body
    from jupyter_securellm.server.errors import STATUS, BrokerError

    assert STATUS is protocol.ERROR_STATUS
    for type_, status in protocol.ERROR_STATUS.items():
        err = BrokerError(type_, "x")
        back = error_from_body(err.status, __import__("json").dumps(err.to_json()))
        assert (back.type, back.status) == (type_, status)
