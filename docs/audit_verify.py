#!/usr/bin/env python3
"""Verifies a hata audit export without hata (docs/audit.md).
Usage: python3 audit_verify.py EXPORT.jsonl PUBLIC-KEY.pem   (needs: pip install cryptography)"""
import hashlib, json, math, sys
from decimal import Decimal
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key

def num(x):  # a JSON number as a double, written as ECMAScript's Number.prototype.toString does
    x = float(x)
    if x <= 0: return "0" if x == 0 else "-" + num(-x)
    _, digits, exp = Decimal(repr(x)).normalize().as_tuple()  # repr: the shortest round-trip digits
    d = "".join(map(str, digits)); k = len(d); n = exp + k
    if k <= n <= 21: return d + "0" * (n - k)
    if 0 < n <= 21: return d[:n] + "." + d[n:]
    if -6 < n <= 0: return "0." + "0" * -n + d
    return d[0] + ("." + d[1:] if k > 1 else "") + "e" + ("+" if n > 0 else "-") + str(abs(n - 1))

def jcs(v):  # RFC 8785 canonical JSON: members sorted by UTF-16 code units, no whitespace
    if isinstance(v, dict):
        keys = sorted(v, key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(jcs(k) + ":" + jcs(v[k]) for k in keys) + "}"
    if isinstance(v, list): return "[" + ",".join(map(jcs, v)) + "]"
    if isinstance(v, (int, float)) and not isinstance(v, bool): return num(v)
    return json.dumps(v, ensure_ascii=False)  # strings, true, false, null

def fail(why): sys.exit(f"FAIL line {i}: {why}")
def finite(s):
    if not math.isfinite(float(s)): raise ValueError(f"number out of range: {s}")
    return float(s)
def constant(c): raise ValueError(f"{c} is not JSON")
def members(pairs):  # a repeated member name means different things to different readers
    if len(dict(pairs)) < len(pairs): raise ValueError("duplicate member")
    return dict(pairs)

key = load_pem_public_key(open(sys.argv[2], "rb").read())
key_id = hashlib.sha256(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()[:16]
MEMBERS = {"seq", "at", "actor", "role", "action", "resource", "project", "environment",
           "old", "new", "patch", "ip", "user_agent", "request_id", "prev_hash", "hash"}
prev, ahead, entries, i = None, None, 0, 0  # prev: (seq, hash) of the last entry or the anchor

def checkpoint(c):
    global prev, ahead
    signed = {m: c[m] for m in ("at", "hash", "key_id", "seq")}
    try:
        if c["key_id"] != key_id: raise ValueError("signed by another key")
        key.verify(bytes.fromhex(c["signature"]), b"hata-audit-checkpoint-v1\n" + jcs(signed).encode())
    except Exception: fail(f"bad signature on the checkpoint at seq {c['seq']}")
    if prev is None: prev = (c["seq"], c["hash"])  # the anchor of a range or a pruned chain
    elif c["seq"] == prev[0] and c["hash"] != prev[1]: fail(f"checkpoint mismatch at seq {c['seq']}")
    elif c["seq"] < prev[0]: fail(f"misplaced checkpoint at seq {c['seq']}")
    elif c["seq"] > prev[0] and (ahead is None or c["seq"] > ahead[0]): ahead = (c["seq"], c["hash"])

def entry(o):
    global prev, ahead, entries
    if not MEMBERS <= set(o) or type(o["seq"]) is not int: fail("malformed entry")
    if prev is None and o["seq"] != 1: fail(f"unanchored start at seq {o['seq']}")
    prev = prev or (0, "0" * 64)
    if o["seq"] != prev[0] + 1: fail(f"gap or reorder: seq {o['seq']} after {prev[0]}")
    if o["prev_hash"] != prev[1]: fail(f"broken link at seq {o['seq']}")
    body = jcs({k: v for k, v in o.items() if k != "hash"}).encode()
    h = hashlib.sha256(bytes.fromhex(prev[1]) + body).hexdigest()
    if h != o["hash"]: fail(f"hash mismatch at seq {o['seq']}")
    if ahead and ahead[0] == o["seq"]:
        ahead = None if ahead[1] == h else fail(f"checkpoint mismatch at seq {o['seq']}")
    prev, entries = (o["seq"], h), entries + 1

for i, line in enumerate(open(sys.argv[1], "rb"), 1):
    if not line.strip(): continue
    try:
        o = json.loads(line.decode("utf-8"), parse_float=finite, parse_constant=constant,
                       object_pairs_hook=members)
        checkpoint(o["checkpoint"]) if list(o) == ["checkpoint"] else entry(o)
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError) as e:
        fail(f"malformed: {e!r}")
if ahead: fail(f"truncated: a checkpoint names seq {ahead[0]}, the last entry is seq {prev[0]}")
print(f"ok: {entries} entries, last seq {prev and prev[0]}, head {prev and prev[1]}")
