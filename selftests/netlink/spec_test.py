#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Documentation/netlink/specs/shmk.yaml against uapi/linux/shmk.h.

Checks the spec's shape (the keys the kernel's genetlink-legacy schema
allows) and that every value it gives (commands, attributes, enums, flags,
family name, version, group) is what the uapi header says. Needs no module.
Output: KTAP-like "ok"/"not ok" lines.
"""
import os
import re
import sys

try:
    import yaml
except ImportError:
    print("1..0 # SKIP python3-yaml is not installed")
    sys.exit(4)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
SPEC = os.path.join(ROOT, "Documentation", "netlink", "specs", "shmk.yaml")
UAPI = os.path.join(ROOT, "uapi", "linux", "shmk.h")

# Keys of Documentation/netlink/genetlink-legacy.yaml (Linux 6.12).
TOP = {"name", "doc", "protocol", "uapi-header", "c-family-name", "c-version-name",
       "max-by-define", "kernel-policy", "version", "definitions", "attribute-sets",
       "operations", "mcast-groups"}
DEFN = {"name", "header", "type", "doc", "value", "value-start", "entries", "render-max",
        "enum-name", "name-prefix", "members"}
ASET = {"name", "name-prefix", "enum-name", "doc", "subset-of", "attr-cnt-name",
        "attr-max-name", "attributes"}
ATTR = {"name", "type", "doc", "value", "type-value", "byte-order", "multi-attr",
        "nested-attributes", "enum", "enum-as-flags", "checks", "sub-type", "display-hint",
        "name-prefix", "struct"}
ATYPES = {"unused", "pad", "flag", "binary", "bitfield32", "uint", "sint", "u8", "u16",
          "u32", "u64", "s32", "s64", "string", "nest", "array-nest", "nest-type-value"}
OPS = {"enum-model", "name-prefix", "enum-name", "async-prefix", "async-enum",
       "fixed-header", "list"}
OP = {"name", "doc", "value", "attribute-set", "flags", "dont-validate", "fixed-header",
      "do", "dump", "notify", "event", "mcgrp", "config-cond"}
SUBOP = {"request", "reply", "pre", "post"}


def cname(s):
    return s.upper().replace("-", "_")


def uapi_values():
    """Enum members and #defines of the uapi header, evaluated."""
    text = open(UAPI).read()
    vals = {}
    for m in re.finditer(r"#define\s+(\w+)\s+(\"[^\"]*\"|\d+)(?=\s|$)", text):
        v = m.group(2)
        vals[m.group(1)] = v.strip('"') if v.startswith('"') else int(v)
    for m in re.finditer(r"#define\s+(\w+)\s+_BITULL?\((\d+)\)", text):
        vals[m.group(1)] = 1 << int(m.group(2))
    for m in re.finditer(r"#define\s+(\w+)\s+(0x[0-9a-fA-F]+)U(?=\s|$)", text):
        vals[m.group(1)] = int(m.group(2), 16)
    for m in re.finditer(r"enum\s+(\w+)\s*\{(.*?)\};", text, re.S):
        n = 0
        body = re.sub(r"/\*.*?\*/", "", m.group(2), flags=re.S)
        for item in body.split(","):
            item = item.strip()
            if not item:
                continue
            if "=" in item:
                k, v = [x.strip() for x in item.split("=")]
                n = int(v)
            else:
                k = item
            vals[k] = n
            n += 1
    for m in re.finditer(r"#define\s+(\w+)\s+\((\w+) - 1\)", text):
        vals[m.group(1)] = vals[m.group(2)] - 1
    return vals


class Tests:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def check(self, cond, name):
        self.n += 1
        if cond:
            print("ok %d %s" % (self.n, name))
        else:
            print("not ok %d %s" % (self.n, name))
            self.failed += 1


def main():
    spec = yaml.safe_load(open(SPEC))
    uapi = uapi_values()
    t = Tests()
    print("TAP version 13")

    bad = set(spec) - TOP
    t.check(not bad, "top-level keys %s" % (sorted(bad) or ""))
    t.check(spec["protocol"] == "genetlink-legacy" and spec["kernel-policy"] == "per-op",
            "genetlink-legacy, per-op policy")
    t.check(uapi[cname(spec["c-family-name"])] == spec["name"] == "shmk", "family name")
    t.check(uapi[cname(spec["c-version-name"])] == spec["version"], "family version")
    groups = [g["name"] for g in spec["mcast-groups"]["list"]]
    t.check(groups == [uapi["SHMK_GENL_MCGRP_EVENTS"]], "multicast groups")

    ok = True
    for d in spec["definitions"]:
        if set(d) - DEFN:
            print("# definition %s: unknown keys %s" % (d["name"], set(d) - DEFN))
            ok = False
        if d["type"] == "const":
            ok &= uapi.get("SHMK_" + cname(d["name"])) == d["value"]
        else:
            prefix = cname(d["name-prefix"])
            for i, e in enumerate(d["entries"]):
                want = (1 << i) if d["type"] == "flags" else i
                got = uapi.get(prefix + cname(e["name"]))
                if got != want:
                    print("# %s%s: spec %r, uapi %r" % (prefix, cname(e["name"]), want, got))
                    ok = False
    t.check(ok, "definitions match the uapi")

    ok = True
    aset = spec["attribute-sets"][0]
    names = set()
    for a in aset["attributes"]:
        if set(a) - ATTR or a["type"] not in ATYPES:
            print("# attribute %s: bad keys or type" % a["name"])
            ok = False
        got = uapi.get(cname(aset["name-prefix"]) + cname(a["name"]))
        if got != a["value"]:
            print("# attribute %s: spec %r, uapi %r" % (a["name"], a["value"], got))
            ok = False
        names.add(a["name"])
    ok &= not (set(aset) - ASET)
    ok &= len(aset["attributes"]) == uapi[cname(aset["attr-cnt-name"])]
    ok &= len(aset["attributes"]) - 1 == uapi[cname(aset["attr-max-name"])]
    t.check(ok, "attributes match the uapi")

    ok = not (set(spec["operations"]) - OPS)
    ops = spec["operations"]["list"]
    for op in ops:
        if set(op) - OP:
            print("# op %s: unknown keys %s" % (op["name"], set(op) - OP))
            ok = False
        got = uapi.get(cname(spec["operations"]["name-prefix"]) + cname(op["name"]))
        if got != op["value"]:
            print("# op %s: spec %r, uapi %r" % (op["name"], op["value"], got))
            ok = False
        lists = []
        for kind in ("do", "dump"):
            if kind in op:
                if set(op[kind]) - SUBOP:
                    ok = False
                lists += [op[kind][m].get("attributes", []) for m in ("request", "reply")
                          if m in op[kind]]
        if "event" in op:
            lists.append(op["event"]["attributes"])
            ok &= op.get("mcgrp") in groups
        for lst in lists:
            for a in lst:
                if a not in names:
                    print("# op %s: unknown attribute %s" % (op["name"], a))
                    ok = False
    ok &= len(ops) - 1 == uapi["SHMK_CMD_MAX"]
    t.check(ok, "operations match the uapi")

    print("1..%d" % t.n)
    return 1 if t.failed else 0


if __name__ == "__main__":
    sys.exit(main())
