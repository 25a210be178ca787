"""The Hub stack makes the checkout and venv traversable for its test users, and puts the modes back.

CI clones into folders it does not control, often mode 700; the test users must still reach the
checkout (PYTHONPATH) and the venv. `grant_traverse` adds o+x (never o+r) where it is missing and
`restore_modes` undoes exactly that.
"""
from __future__ import annotations

import os
import stat

import pytest

from jupyter_securellm.testing.hub import HubUnavailable, grant_traverse, restore_modes


def _mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def test_adds_o_x_on_a_700_chain_and_restores_it(tmp_path):
    root = tmp_path / "clone"
    chain = [root, root / "a", root / "a" / "checkout"]
    chain[-1].mkdir(parents=True)
    for d in chain:
        os.chmod(d, 0o700)
    open_dir = root / "a" / "already-open"
    open_dir.mkdir(mode=0o755)
    os.chmod(open_dir, 0o755)
    before_tmp = _mode(tmp_path)

    changed = grant_traverse([chain[-1], open_dir])
    try:
        for d in chain:
            assert _mode(d) == 0o701, (d, oct(_mode(d)))  # traverse only: no read, no write for others
        assert set(chain) <= {d for d, _ in changed}
        assert open_dir not in {d for d, _ in changed}  # already traversable: untouched
        assert all(mode & 0o001 == 0 for _, mode in changed)
    finally:
        restore_modes(changed)
    for d in chain:
        assert _mode(d) == 0o700
    assert _mode(open_dir) == 0o755 and _mode(tmp_path) == before_tmp


def test_a_directory_that_cannot_be_opened_is_named(tmp_path, monkeypatch):
    """chmod refused (not the owner, read-only mount): a clear error naming it, and nothing left changed."""
    outer, inner = tmp_path / "outer", tmp_path / "outer" / "inner"
    inner.mkdir(parents=True)
    os.chmod(inner, 0o700)
    os.chmod(outer, 0o700)
    real_chmod = os.chmod

    def chmod(path, mode, *a, **kw):  # a real root cannot be refused on demand: fake only this error path
        if str(path) == str(outer):
            raise PermissionError(1, "Operation not permitted")
        return real_chmod(path, mode, *a, **kw)

    monkeypatch.setattr(os, "chmod", chmod)
    with pytest.raises(HubUnavailable) as exc:
        grant_traverse([inner])
    monkeypatch.undo()
    assert str(outer) in str(exc.value) and "o+x" in str(exc.value)
    assert _mode(inner) == 0o700, "the bit added before the failure must be taken back"


def test_an_unlistable_checkout_is_named(tmp_path):
    """The checkout itself must be listable (the importer lists it); a 700 one is named, not changed."""
    from jupyter_securellm.testing.hub import need_listable

    checkout = tmp_path / "checkout"
    checkout.mkdir()
    os.chmod(checkout, 0o700)
    with pytest.raises(HubUnavailable) as exc:
        need_listable([checkout])
    assert str(checkout) in str(exc.value) and "chmod o+rx" in str(exc.value)
    assert _mode(checkout) == 0o700
    os.chmod(checkout, 0o755)
    need_listable([checkout])  # control: a clone's usual mode passes
