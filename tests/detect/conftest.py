import pytest

from jupyter_securellm.detect import Scanner, hyperscan_available

BACKENDS = ["hyperscan", "python"]


@pytest.fixture(scope="session", autouse=True)
def _hyperscan_present():
    # The Hyperscan backend is a declared dependency on this platform: its absence is a broken install,
    # not a reason to skip half the suite.
    assert hyperscan_available(), "hyperscan is not importable; `make test` installs it"


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def scanner(backend):
    return Scanner(backend=backend)
