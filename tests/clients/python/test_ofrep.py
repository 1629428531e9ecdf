"""The real Python OpenFeature SDK and OFREP provider against a running hata.

A plain script (no pytest): the first failing check raises AssertionError and ends it with a
non-zero exit. Admin changes go over plain HTTP (urllib); only the evaluations go through
`openfeature-sdk` + `openfeature-provider-ofrep`.

Environment:
  HATA_URL            base URL of the server, e.g. http://127.0.0.1:7070
  HATA_ADMIN_TOKEN    admin token
  HATA_SERVER_TOKEN   secret of a server token bound to HATA_PROJECT / HATA_ENVIRONMENT
  HATA_PROJECT        project key (the project exists already)
  HATA_ENVIRONMENT    environment key (default: development)

Run by crates/hata-cli/tests/ofrep_clients.rs with the pinned packages of requirements.txt on
PYTHONPATH. Its flags all start with `py-`, so it can share a server with the other clients.
"""

import json
import os
import sys
import urllib.error
import urllib.request

from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

URL = os.environ["HATA_URL"].rstrip("/")
ADMIN = os.environ["HATA_ADMIN_TOKEN"]
SERVER_TOKEN = os.environ["HATA_SERVER_TOKEN"]
PROJECT = os.environ["HATA_PROJECT"]
ENV = os.environ.get("HATA_ENVIRONMENT", "development")

checks = 0


def check(cond, what):
    global checks
    if not cond:  # not `assert`: the checks must hold under `python -O` too
        raise AssertionError(what)
    checks += 1


def admin(method, path, body=None, content_type="application/json"):
    req = urllib.request.Request(
        f"{URL}/api/v1{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": content_type},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        raise AssertionError(f"{method} {path}: {e.code} {e.read().decode()}") from None


def create_flag(flag):
    status, body = admin("POST", f"/projects/{PROJECT}/flags", flag)
    check(status == 201, f"create {flag['key']}: {status} {body}")


def patch_env(flag, patch):
    status, body = admin(
        "PATCH",
        f"/projects/{PROJECT}/flags/{flag}/environments/{ENV}",
        patch,
        "application/merge-patch+json",
    )
    check(status == 200, f"patch {flag}: {status} {body}")


def expect(details, *, value, variant, reason, metadata=None):
    what = f"{details.flag_key}: {details}"
    check(details.error_code is None, f"no error expected, {what}")
    check(details.value == value, f"value {value!r} expected, {what}")
    check(type(details.value) is type(value), f"type {type(value)} expected, {what}")
    check(details.variant == variant, f"variant {variant!r} expected, {what}")
    check(details.reason == reason, f"reason {reason} expected, {what}")
    for k, v in (metadata or {}).items():
        check(details.flag_metadata.get(k) == v, f"metadata {k}={v!r} expected, {what}")


# --- flags, made through the admin API -------------------------------------------------------

create_flag({
    "key": "py-bool", "name": "Python boolean", "type": "boolean",
    "environments": {ENV: {
        "enabled": True, "off_variant": "off",
        "rules": [{"id": "beta-plan",
                   "conditions": [{"attribute": "plan", "operator": "in", "values": ["beta"]}],
                   "serve": {"variant": "on"}}],
        "default": {"variant": "off"},
    }},
})
create_flag({
    "key": "py-string", "name": "Python string", "type": "string",
    "variants": [{"key": "a", "value": "alpha"}, {"key": "b", "value": "bravo"}],
    "environments": {ENV: {"enabled": True, "off_variant": "a", "default": {"variant": "b"}}},
})
create_flag({
    "key": "py-int", "name": "Python integer", "type": "number",
    "variants": [{"key": "small", "value": 7}, {"key": "big", "value": 42}],
    "environments": {ENV: {
        "enabled": True, "off_variant": "small",
        "default": {"rollout": {"weights": [{"variant": "small", "weight": 0},
                                            {"variant": "big", "weight": 100000}]}},
    }},
})
create_flag({
    "key": "py-float", "name": "Python float", "type": "number",
    "variants": [{"key": "low", "value": 0.25}, {"key": "high", "value": 2.5}],
    "environments": {ENV: {
        "enabled": True, "off_variant": "low",
        "targets": [{"variant": "high", "values": ["user-vip"]}],
        "default": {"variant": "low"},
    }},
})
create_flag({
    "key": "py-object", "name": "Python object", "type": "json",
    "variants": [{"key": "red", "value": {"color": "red", "sizes": [1, 2, 3]}},
                 {"key": "blue", "value": {"color": "blue", "sizes": []}}],
    "environments": {ENV: {"enabled": False, "off_variant": "red", "default": {"variant": "blue"}}},
})

# --- the real SDK -----------------------------------------------------------------------------

provider = OFREPProvider(
    URL, headers_factory=lambda: {"Authorization": f"Bearer {SERVER_TOKEN}"}
)
api.set_provider_and_wait(provider)
client = api.get_client("hata-python-test")

beta = EvaluationContext(targeting_key="user-1", attributes={"plan": "beta"})
free = EvaluationContext(targeting_key="user-2", attributes={"plan": "free"})
vip = EvaluationContext(targeting_key="user-vip")

# boolean: a rule decides, then the default
expect(client.get_boolean_details("py-bool", False, beta),
       value=True, variant="on", reason=Reason.TARGETING_MATCH,
       metadata={"ruleId": "beta-plan", "flagVersion": 1})
expect(client.get_boolean_details("py-bool", True, free),
       value=False, variant="off", reason=Reason.DEFAULT, metadata={"flagVersion": 1})
check(client.get_boolean_value("py-bool", False, beta) is True, "get_boolean_value")

# string: a fixed default and nothing else -> STATIC
expect(client.get_string_details("py-string", "fallback", free),
       value="bravo", variant="b", reason=Reason.STATIC, metadata={"flagVersion": 1})

# integer: a rollout -> SPLIT
expect(client.get_integer_details("py-int", 0, beta),
       value=42, variant="big", reason=Reason.SPLIT, metadata={"flagVersion": 1})

# float: a target on the targetingKey -> TARGETING_MATCH; others get the default
expect(client.get_float_details("py-float", 9.5, vip),
       value=2.5, variant="high", reason=Reason.TARGETING_MATCH)
expect(client.get_float_details("py-float", 9.5, free),
       value=0.25, variant="low", reason=Reason.DEFAULT)

# object: a disabled flag serves its off variant -> DISABLED
expect(client.get_object_details("py-object", {"color": "none"}, beta),
       value={"color": "red", "sizes": [1, 2, 3]}, variant="red", reason=Reason.DISABLED)

# no context at all (the provider still sends `"context": {}`): no targetingKey to bucket by, so
# the rollout serves its first variant with weight > 0 and reports DEFAULT, with a note
expect(client.get_integer_details("py-int", 0),
       value=42, variant="big", reason=Reason.DEFAULT,
       metadata={"hataNote": "bucket_by attribute missing", "flagVersion": 1})
expect(client.get_string_details("py-string", "fallback"),
       value="bravo", variant="b", reason=Reason.STATIC)

# missing flag: the SDK falls back to the caller's default with FLAG_NOT_FOUND
missing = client.get_string_details("py-missing", "the-default", beta)
check(missing.value == "the-default", f"default value expected, {missing}")
check(missing.error_code == ErrorCode.FLAG_NOT_FOUND, f"FLAG_NOT_FOUND expected, {missing}")
check(missing.reason == Reason.ERROR, f"reason ERROR expected, {missing}")
missing_obj = client.get_object_details("py-missing", {"x": 1}, beta)
check(missing_obj.value == {"x": 1} and missing_obj.error_code == ErrorCode.FLAG_NOT_FOUND,
      f"object default with FLAG_NOT_FOUND expected, {missing_obj}")

# wrong type: a string flag asked for as a boolean -> TYPE_MISMATCH, default served
mismatch = client.get_boolean_details("py-string", True, beta)
check(mismatch.value is True and mismatch.error_code == ErrorCode.TYPE_MISMATCH,
      f"TYPE_MISMATCH expected, {mismatch}")

# --- changes through the admin API: seen on the very next evaluation ---------------------------

patch_env("py-string", {"default": {"variant": "a"}})
expect(client.get_string_details("py-string", "fallback", free),
       value="alpha", variant="a", reason=Reason.STATIC, metadata={"flagVersion": 2})

patch_env("py-bool", {"enabled": False})  # the kill switch
expect(client.get_boolean_details("py-bool", True, beta),
       value=False, variant="off", reason=Reason.DISABLED, metadata={"flagVersion": 2})

patch_env("py-object", {"enabled": True})
expect(client.get_object_details("py-object", {}, beta),
       value={"color": "blue", "sizes": []}, variant="blue", reason=Reason.STATIC)

api.shutdown()
print(f"python openfeature-sdk + openfeature-provider-ofrep: {checks} checks passed")
sys.exit(0)
