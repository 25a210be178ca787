"""A failing test's report (arguments, assertion operands, captured output) shows no fake key."""
import pytest

from jupyter_securellm.detect import fake_secret

pytest_plugins = ["pytester"]


@pytest.mark.parametrize("where", ["assert", "captured", "fixture"])
def test_a_failing_test_does_not_print_the_key(pytester, where):
    key = fake_secret("openai-api-key")
    pytester.makepyfile(f'''
        import pytest

        @pytest.fixture
        def provider_key():
            return {key!r}

        def test_fails(provider_key):
            where = {where!r}
            if where == "captured":
                print("the key is", provider_key)
                assert False
            if where == "fixture":
                assert provider_key == "x"
            assert "answer" in f"an echo of {{provider_key}}"
    ''')
    result = pytester.runpytest_subprocess("-p", "jupyter_securellm.testing.pytest_plugin", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.str() + result.stderr.str()
    assert "test_fails" in out and "[REDACTED:" in out  # the report is there, with the key replaced
    assert key not in out and key[:20] not in out and key[-20:] not in out


def test_without_the_hook_the_key_would_be_printed(pytester):
    """Control: the same failure without this project's plugin does print the key."""
    key = fake_secret("openai-api-key")
    pytester.makepyfile(f'''
        def test_fails():
            provider_key = {key!r}
            assert "answer" in f"an echo of {{provider_key}}"
    ''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    assert key in result.stdout.str()
