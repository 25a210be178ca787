"""Kubernetes auth end to end: VaultClient -> real OpenBao (kubernetes auth method) -> TokenReview.

OpenBao's real kubernetes plugin checks each login JWT with the Kubernetes TokenReview API; here
that API is `jupyter_securellm.testing.k8s.KubernetesAPI`, a real HTTPS stand-in (run-time CA
given to OpenBao as `kubernetes_ca_cert`) that authenticates only the tokens it issued. Tier 2/3:
the broker's identity in a pod is its service-account token; no token or JWT may show up in an
error message, a traceback or a log record.
"""
from __future__ import annotations

import json
import logging
import ssl
import traceback
import urllib.error
import urllib.request

import pytest

from jupyter_securellm.vault import VaultAuthError, VaultClient, VaultSettings
from jupyter_securellm.testing.k8s import TOKENREVIEW_PATH, KubernetesAPI, configure_openbao, fingerprint

SA, NS = "jupyter", "hub"


@pytest.fixture
def k8s_api(tmp_path):
    with KubernetesAPI(tmp_path / "k8s") as api:
        yield api


@pytest.fixture
def k8s(openbao, k8s_api, kv, unique_path):
    """Kubernetes auth at a per-test mount, role bound to service account hub/jupyter."""
    mount, role = f"k8s-{unique_path}", f"jupyter-{unique_path}"
    reviewer = configure_openbao(openbao, k8s_api, role, [kv["policy"]], service_account=SA, namespace=NS,
                                 mount=mount)
    return {"api": k8s_api, "mount": mount, "role": role, "reviewer": reviewer}


def _client(openbao, k8s, jwt_path, seen=None):
    return VaultClient(VaultSettings(url=openbao.url, auth_method="kubernetes", role=k8s["role"],
                                     auth_mount=k8s["mount"], jwt_path=jwt_path),
                       on_secret=None if seen is None else seen.append)


def _pieces(*secrets_):
    """Each credential and, for JWTs, each of its three parts: a partial JWT is a leak too."""
    out = []
    for s in secrets_:
        if s:
            out.append(s)
            out.extend(p for p in s.split(".") if len(p) >= 16)
    return out


def _leaks(texts, secrets_) -> list[int]:
    """Indexes of the secrets found in any text (never the values: failures must not print them)."""
    blob = "\n".join(texts)
    return [i for i, s in enumerate(_pieces(*secrets_)) if s in blob]


def test_login_reads_kv_secret_via_token_review(openbao, kv, k8s, write_file, caplog):
    caplog.set_level(logging.DEBUG)
    api = k8s["api"]
    jwt = api.issue_token(SA, NS)
    seen: list[str] = []
    vc = _client(openbao, k8s, write_file("sa-token", jwt), seen)
    try:
        assert vc.read_secret(f"{kv['prefix']}/openai", "api_key") == kv["shared"]
        assert vc.read_secret(f"{kv['prefix']}/{{user}}/openai", "api_key", user="alice") == kv["alice"]
        st = vc.status()
        assert st["auth_method"] == "kubernetes" and st["authenticated"] is True
        # OpenBao asked the TokenReview API once, as the reviewer account, about this very token
        reviews = api.reviews()
        assert len(reviews) == 1
        assert reviews[0]["path"] == TOKENREVIEW_PATH and reviews[0]["code"] == 201
        assert reviews[0]["reviewer"] == "system:serviceaccount:vault:vault-auth"
        assert reviews[0]["token_fingerprint"] == fingerprint(jwt)
        assert reviews[0]["reviewed"] == {"authenticated": True, "username": f"system:serviceaccount:{NS}:{SA}"}
        # the Vault token belongs to that service account, and was handed to the redactor hook
        vault_token = vc._client.token
        meta = openbao.client().auth.token.lookup(vault_token)["data"]["meta"]
        assert meta["service_account_name"] == SA and meta["service_account_namespace"] == NS
        assert meta["role"] == k8s["role"]
        assert vault_token in seen and kv["shared"] in seen
        assert jwt in seen, "the service-account JWT is a credential too: the redactor must know it"
        assert _leaks([caplog.text, json.dumps(st)], [jwt, vault_token, k8s["reviewer"]]) == []
    finally:
        vc.close()


def test_rotated_service_account_token_is_read_at_next_login(openbao, kv, k8s, write_file):
    """The kubelet rotates projected tokens: every login re-reads the file."""
    api = k8s["api"]
    old = api.issue_token(SA, NS)
    path = write_file("sa-token", old)
    vc = _client(openbao, k8s, path)
    try:
        assert vc.read_secret(f"{kv['prefix']}/openai", "api_key") == kv["shared"]
        new = api.issue_token(SA, NS, account=api.account_of(old))
        write_file("sa-token", new)
        api.revoke(old)
        openbao.revoke_token(vc._client.token)   # force a re-login (403 -> fresh login -> retry)
        vc.invalidate()
        assert vc.read_secret(f"{kv['prefix']}/openai", "api_key") == kv["shared"]
        assert [r["token_fingerprint"] for r in api.reviews()] == [fingerprint(old), fingerprint(new)]
        assert vc.stats["logins"] == 2
    finally:
        vc.close()


def test_token_rejected_by_token_review_is_a_clear_auth_error(openbao, kv, k8s, write_file, caplog):
    caplog.set_level(logging.DEBUG)
    api = k8s["api"]
    jwt = api.issue_token(SA, NS)
    api.revoke(jwt)  # its pod is gone: Kubernetes no longer authenticates it
    vc = _client(openbao, k8s, write_file("sa-token", jwt))
    with pytest.raises(VaultAuthError) as ei:
        vc.read_secret(f"{kv['prefix']}/openai", "api_key")
    msg = str(ei.value)
    assert k8s["role"] in msg and "kubernetes" in msg and openbao.url in msg
    # it was the TokenReview that said no (the JWT itself is well-formed and bound to the role)
    assert [r["reviewed"] for r in api.reviews()] == [{"authenticated": False}]
    tb = "".join(traceback.format_exception(ei.value))
    assert ei.value.__cause__ is None and ei.value.__suppress_context__
    assert _leaks([msg, tb, caplog.text, repr(ei.value)], [jwt, k8s["reviewer"]]) == []
    vc.close()


def test_account_not_bound_to_the_role_is_refused_without_a_review(openbao, kv, k8s, write_file, caplog):
    caplog.set_level(logging.DEBUG)
    jwt = k8s["api"].issue_token("notebook-runner", NS)   # a real token, but another account
    vc = _client(openbao, k8s, write_file("sa-token", jwt))
    with pytest.raises(VaultAuthError, match=k8s["role"]) as ei:
        vc.read_secret(f"{kv['prefix']}/openai", "api_key")
    assert k8s["api"].reviews() == []   # OpenBao refused on the role's binding alone
    assert _leaks([str(ei.value), caplog.text], [jwt]) == []
    vc.close()


def test_reviewer_without_tokenreview_permission_fails_login(openbao, kv, k8s_api, unique_path, write_file):
    """A token_reviewer_jwt lacking system:auth-delegator: the API answers 403, login fails."""
    mount, role = f"k8s-{unique_path}", f"jupyter-{unique_path}"
    weak = k8s_api.issue_token("default", "vault")   # valid, but may not create tokenreviews
    configure_openbao(openbao, k8s_api, role, [kv["policy"]], service_account=SA, namespace=NS,
                      mount=mount, reviewer_jwt=weak)
    jwt = k8s_api.issue_token(SA, NS)
    vc = VaultClient(VaultSettings(url=openbao.url, auth_method="kubernetes", role=role, auth_mount=mount,
                                   jwt_path=write_file("sa-token", jwt)))
    with pytest.raises(VaultAuthError, match=role) as ei:
        vc.read_secret(f"{kv['prefix']}/openai", "api_key")
    assert [(r["code"], r["reviewer"]) for r in k8s_api.requests] == [(403, "system:serviceaccount:vault:default")]
    assert _leaks([str(ei.value)], [jwt, weak]) == []
    vc.close()


def _post(api, body, *, bearer=None, ca=True, path=TOKENREVIEW_PATH):
    ctx = ssl.create_default_context(cafile=api.ca_cert if ca else None)
    req = urllib.request.Request(api.url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    if bearer:
        req.add_header("Authorization", f"Bearer {bearer}")
    try:
        with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_standin_speaks_the_tokenreview_wire_format(k8s_api):
    api = k8s_api
    reviewer, jwt = api.reviewer_token(), api.issue_token(SA, NS, audiences=["vault"])
    code, body = _post(api, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                             "spec": {"token": jwt, "audiences": ["vault"]}}, bearer=reviewer)
    assert code == 201 and body["kind"] == "TokenReview" and body["apiVersion"] == "authentication.k8s.io/v1"
    st = body["status"]
    assert st["authenticated"] is True and st["audiences"] == ["vault"]
    assert st["user"]["username"] == f"system:serviceaccount:{NS}:{SA}"
    assert st["user"]["uid"] == api.account_of(jwt).uid
    assert f"system:serviceaccounts:{NS}" in st["user"]["groups"]
    # wrong audience, unknown token: not authenticated, with an error (still 201, as Kubernetes does)
    code, body = _post(api, {"spec": {"token": jwt, "audiences": ["other"]}}, bearer=reviewer)
    assert code == 201 and not body["status"].get("authenticated") and "audiences" in body["status"]["error"]
    code, body = _post(api, {"spec": {"token": api.reviewer_token() + "x"}}, bearer=reviewer)
    assert code == 201 and not body["status"].get("authenticated") and body["status"]["error"]
    # no bearer: 401 Status; not HTTPS-trusted without the run-time CA
    code, body = _post(api, {"spec": {"token": jwt}})
    assert code == 401 and body["kind"] == "Status" and body["reason"] == "Unauthorized"
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        _post(api, {"spec": {"token": jwt}}, bearer=reviewer, ca=False)
    # the record keeps fingerprints, never tokens
    assert _leaks([json.dumps(api.requests)], [jwt, reviewer]) == []


def test_pem_keys_refuse_a_token_signed_by_another_key(openbao, kv, k8s_api, unique_path, write_file, tmp_path):
    """With `pem_keys`, OpenBao checks the signature itself: a forged token never reaches the review."""
    mount, role = f"k8s-{unique_path}", f"jupyter-{unique_path}"
    configure_openbao(openbao, k8s_api, role, [kv["policy"]], service_account=SA, namespace=NS,
                      mount=mount, pem_keys=True)
    settings = dict(url=openbao.url, auth_method="kubernetes", role=role, auth_mount=mount)
    with KubernetesAPI(tmp_path / "rogue") as rogue:   # another signing key, same claims
        forged = rogue.issue_token(SA, NS)
    vc = VaultClient(VaultSettings(jwt_path=write_file("forged", forged), **settings))
    with pytest.raises(VaultAuthError, match=role):
        vc.read_secret(f"{kv['prefix']}/openai", "api_key")
    vc.close()
    assert k8s_api.reviews() == []
    good = VaultClient(VaultSettings(jwt_path=write_file("sa-token", k8s_api.issue_token(SA, NS)), **settings))
    try:
        assert good.read_secret(f"{kv['prefix']}/openai", "api_key") == kv["shared"]
        assert len(k8s_api.reviews()) == 1
    finally:
        good.close()
