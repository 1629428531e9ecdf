#!/usr/bin/env python3
"""Write an Unleash Edge bootstrap file equivalent to the data set of bench/seed.py.

Unleash Edge's offline mode (`unleash-edge offline --bootstrap-file F`) reads either a
"simple" map or the standard client-features document (`{version: 2, features, segments}`,
as served by Unleash's /api/client/features). This writes the standard document:

  * static-NNNNN   a third: enabled, one `default` strategy, no constraints
  * rules-NNNNN    a third: three strategies (Unleash enables a flag when ANY strategy holds),
                   mirroring hata's three rules: a segment, STR_STARTS_WITH + NUM_GT, and
                   IN (or a segment) + SEMVER_GT + NUM_GT. The benchmark context matches only
                   the third, so Edge walks all three, like hata walks its three rules.
  * rollout-NNNNN  a third: one flexibleRollout strategy at 100 % with 3 strategy variants
                   a/b/c (variable weights 334/333/333, stickiness default = userId), the
                   counterpart of hata's 3-way percentage rollout.

Unleash context (frontend API): `userId` plays the part of hata's `targetingKey`; other fields
go in `properties` (`?properties[plan]=pro` in a GET query, or `{"properties": {...}}` in a POST
body). Constraint `contextName`s below name those properties.

Usage: bench/unleash-bootstrap.py [--flags 100] > unleash-bootstrap.json
"""

import argparse
import json
import sys

# Segment ids (Unleash segments are numbered and hold constraints only; hata's explicit
# `included` list becomes a userId IN constraint).
SEG_BETA, SEG_INTERNAL, SEG_PAYING = 1, 2, 3

SEGMENTS = [
    {
        "id": SEG_BETA,
        "constraints": [
            # hata's segment is "included OR rule"; Unleash segments are an AND of constraints,
            # so the closest single-constraint equivalent is the included list.
            {
                "contextName": "userId",
                "operator": "IN",
                "values": [f"beta-user-{i}" for i in range(50)],
                "inverted": False,
                "caseInsensitive": False,
            }
        ],
    },
    {
        "id": SEG_INTERNAL,
        "constraints": [
            {
                "contextName": "email",
                "operator": "STR_ENDS_WITH",
                "values": ["@hata.dev"],
                "inverted": False,
                "caseInsensitive": False,
            }
        ],
    },
    {
        "id": SEG_PAYING,
        "constraints": [
            {
                "contextName": "plan",
                "operator": "IN",
                "values": ["pro", "enterprise"],
                "inverted": False,
                "caseInsensitive": False,
            }
        ],
    },
]


def flag_key(kind, i):
    return f"{kind}-{i:05d}"


def flag_keys(n):
    out = []
    for i in range(n):
        kind = ("static", "rules", "rollout")[i % 3]
        out.append((kind, i // 3, flag_key(kind, i // 3)))
    return out


def constraint(name, op, values=None, value=None):
    c = {"contextName": name, "operator": op, "inverted": False, "caseInsensitive": False}
    if values is not None:
        c["values"] = values
    if value is not None:
        c["value"] = value
    return c


def strategy(name="default", constraints=None, segments=None, parameters=None, variants=None, order=0):
    return {
        "name": name,
        "sortOrder": order,
        "constraints": constraints or [],
        "segments": segments or [],
        "parameters": parameters or {},
        "variants": variants or [],
    }


def base(key, description):
    return {
        "name": key,
        "type": "release",
        "description": description,
        "project": "default",
        "enabled": True,
        "stale": False,
        "impressionData": False,
        "variants": [],
    }


def static_feature(key, i):
    f = base(key, "benchmark: no rules")
    f["strategies"] = [strategy("default")]
    return f


def rules_feature(key, i):
    f = base(key, "benchmark: three ordered rules")
    third = [
        constraint("version", "SEMVER_GT", value=f"2.{i % 3}.0"),
        constraint("age", "NUM_GT", value="21"),
    ]
    segs = []
    if i % 2 == 0:
        third.insert(0, constraint("plan", "IN", values=["pro", "enterprise"]))
    else:
        segs = [SEG_PAYING]
    f["strategies"] = [
        # hata's `targets` (vip-1, vip-2 → on) first, then the three rules.
        strategy("default", [constraint("userId", "IN", values=["vip-1", "vip-2"])], order=0),
        strategy("default", [], segments=[SEG_BETA], order=1),
        strategy(
            "default",
            [
                constraint("email", "STR_STARTS_WITH", values=["admin@", "root@"]),
                constraint("age", "NUM_GT", value="18"),
            ],
            order=2,
        ),
        strategy("default", third, segments=segs, order=3),
    ]
    return f


def rollout_feature(key, i):
    f = base(key, "benchmark: 3-way percentage rollout")
    variants = [
        {"name": v, "weight": w, "stickiness": "default", "payload": {"type": "string", "value": val}}
        for v, w, val in (("a", 334, "alpha"), ("b", 333, "beta"), ("c", 333, "gamma"))
    ]
    f["strategies"] = [
        strategy(
            "flexibleRollout",
            parameters={"rollout": "100", "stickiness": "default", "groupId": key},
            variants=variants,
        )
    ]
    return f


BUILDERS = {"static": static_feature, "rules": rules_feature, "rollout": rollout_feature}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flags", type=int, default=100)
    ap.add_argument("-o", "--output", help="file to write (default stdout)")
    args = ap.parse_args()
    doc = {
        "version": 2,
        "features": [BUILDERS[kind](key, i) for kind, i, key in flag_keys(args.flags)],
        "segments": SEGMENTS,
    }
    text = json.dumps(doc, indent=1)
    if args.output:
        with open(args.output, "w") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
