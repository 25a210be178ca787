"""Browser calls go through Jupyter's authorizer (`@authorized`, resource jupyter_securellm:llm)."""
import pytest
from jupyter_server.auth import Authorizer


class DenyLLM(Authorizer):
    def is_authorized(self, handler, user, action, resource):
        return resource != "jupyter_securellm:llm"


@pytest.fixture
def jp_server_config(jp_server_config):
    jp_server_config["ServerApp"]["authorizer_class"] = DenyLLM
    return jp_server_config


async def test_authorizer_is_consulted_for_browser_calls(broker_api, jp_fetch):
    code, body, _ = await broker_api("models")
    assert code == 403
    r = await jp_fetch("api", "status")  # the rest of Jupyter still works for this user
    assert r.code == 200
