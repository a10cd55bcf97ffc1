"""Issuing and verifying tokens, with the clock and keys under the test's control."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from server.auth.principal import Principal, Role
from server.auth.tokens import OWN_ISSUER, issue_token, verify_token
from server.errors import Forbidden, Unauthorized
from server.http.problems import status_of
from server.settings import DEV_SECRET, Settings

SECRET = "production-signing-secret-0123456789abcdef"
IDP_SECRET = "identity-provider-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def rsa_pair() -> tuple[Any, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return key, public


def settings(**overrides: Any) -> Settings:
    return Settings(**{"dev_mode": False, "jwt_secret": SECRET, **overrides})


def idp_claims(sub: str = "C1001", exp_in: int = 600, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": "bank-idp", "aud": "cloudbranch", "sub": sub, "iat": now, "exp": now + exp_in}
    return {**claims, **extra}


@pytest.mark.parametrize("role", list(Role))
def test_issued_tokens_verify_to_the_same_principal(role: Role) -> None:
    s = settings()
    token = issue_token(s, role, "S01")
    assert verify_token(s, token) == Principal(role=role, subject="S01")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], issuer=OWN_ISSUER)
    assert claims["exp"] - claims["iat"] == s.token_ttl_s


def test_issued_tokens_expire_after_their_ttl() -> None:
    s = settings(token_ttl_s=60)
    stale = issue_token(s, Role.SPECIALIST, "S01", now=time.time() - 60 - 31)  # past the leeway
    with pytest.raises(Unauthorized) as raised:
        verify_token(s, stale)
    assert raised.value.code == "token_expired"
    fresh_enough = issue_token(s, Role.SPECIALIST, "S01", now=time.time() - 60 + 5)
    assert verify_token(s, fresh_enough).subject == "S01"


def test_development_mode_signs_with_the_dev_secret_and_production_does_not_accept_it() -> None:
    dev = Settings(dev_mode=True)
    token = issue_token(dev, Role.SUPERVISOR, "SUP1")
    assert jwt.decode(token, DEV_SECRET, algorithms=["HS256"])["role"] == "supervisor"
    with pytest.raises(Unauthorized):
        verify_token(settings(), token)


@pytest.mark.parametrize(
    "token",
    ["", "x", "a.b.c", "x" * 8193, "eyJhbGciOiJIUzI1NiJ9.e30.", "....."],
)
def test_junk_is_invalid_token(token: str) -> None:
    with pytest.raises(Unauthorized) as raised:
        verify_token(settings(), token)
    assert raised.value.code == "invalid_token"
    assert status_of(raised.value) == 401


@pytest.mark.parametrize(
    "claims",
    [
        {"role": "customer"},  # no sub
        {"sub": "C1001"},  # no role
        {"sub": "C1001", "role": "root"},
        {"sub": "", "role": "customer"},
        {"sub": "C" * 33, "role": "customer"},
        {"sub": "C1001\x00", "role": "customer"},
        {"sub": "C1\n001", "role": "customer"},
    ],
)
def test_own_tokens_need_a_subject_and_a_known_role(claims: dict[str, Any]) -> None:
    now = int(time.time())
    token = jwt.encode({"iss": OWN_ISSUER, "exp": now + 60, **claims}, SECRET, "HS256")
    with pytest.raises(Unauthorized) as raised:
        verify_token(settings(), token)
    assert raised.value.code == "invalid_token"


def test_identity_provider_hs256_tokens_are_customers_whatever_they_claim() -> None:
    s = settings(customer_jwt_secret=IDP_SECRET)
    token = jwt.encode(idp_claims(role="supervisor"), IDP_SECRET, "HS256")
    assert verify_token(s, token) == Principal(role=Role.CUSTOMER, subject="C1001")
    wrong = jwt.encode(idp_claims(), SECRET, "HS256")
    with pytest.raises(Unauthorized):
        verify_token(s, wrong)


def test_identity_provider_issuer_is_configurable() -> None:
    s = settings(customer_jwt_secret=IDP_SECRET, customer_jwt_issuer="other-idp")
    token = jwt.encode({**idp_claims(), "iss": "other-idp"}, IDP_SECRET, "HS256")
    assert verify_token(s, token).role is Role.CUSTOMER
    with pytest.raises(Unauthorized):
        verify_token(s, jwt.encode(idp_claims(), IDP_SECRET, "HS256"))  # iss bank-idp


def test_identity_provider_rs256_tokens(rsa_pair: tuple[Any, str]) -> None:
    key, public = rsa_pair
    s = settings(customer_jwt_public_key=public)
    token = jwt.encode(idp_claims(sub="C1002", role="specialist"), key, "RS256")
    assert verify_token(s, token) == Principal(role=Role.CUSTOMER, subject="C1002")
    expired = jwt.encode(idp_claims(exp_in=-120), key, "RS256")
    with pytest.raises(Unauthorized) as raised:
        verify_token(s, expired)
    assert raised.value.code == "token_expired"
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(Unauthorized):
        verify_token(s, jwt.encode(idp_claims(), other, "RS256"))


def test_customer_tokens_without_configured_keys_are_refused() -> None:
    token = jwt.encode(idp_claims(), IDP_SECRET, "HS256")
    with pytest.raises(Unauthorized) as raised:
        verify_token(settings(), token)
    assert raised.value.code == "invalid_token"


def test_principal_require() -> None:
    principal = Principal(Role.CUSTOMER, "C1001")
    principal.require(Role.CUSTOMER, Role.SUPERVISOR)
    with pytest.raises(Forbidden) as raised:
        principal.require(Role.SPECIALIST, Role.SUPERVISOR)
    assert raised.value.code == "wrong_role"
    assert "specialist or supervisor" in raised.value.detail
