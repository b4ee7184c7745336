#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""End-to-end tests of shmkctl against the shmk module (run as root in the VM).

Segments and clients are made by shmk_helper (raw ioctls), one process per
client, driven line by line over a pipe. Output is KTAP-like: one
"ok N name" or "not ok N name" line per test, diagnostics on "# " lines.
Exit status 1 when a test failed, 4 when all were skipped.

Usage: shmkctl_test.py [TEST...]
"""
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
SHMKCTL = os.path.join(ROOT, "tools", "shmkctl", "shmkctl")
HELPER = os.path.join(HERE, "shmk_helper")
QHELPER = os.path.join(HERE, "queue_helper")
PARAMS = "/sys/module/shmk/parameters"
NOBODY = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]
PAGE = os.sysconf("SC_PAGE_SIZE")
TIMEOUT = 90  # generous: TCG on a busy host is slow


class Skip(Exception):
    pass


def log(msg):
    for line in str(msg).splitlines():
        print("# " + line, flush=True)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def check_eq(want, got, what):
    if want != got:
        raise AssertionError("%s: expected %r, got %r" % (what, want, got))


class Lines:
    """Line reader over a pipe with a timeout."""

    def __init__(self, f):
        self.fd = f.fileno()
        self.buf = b""

    def readline(self, timeout=TIMEOUT):
        end = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.fd], [], [], left)
            if not r:
                return None
            data = os.read(self.fd, 65536)
            if not data:
                if self.buf:
                    line, self.buf = self.buf, b""
                    return line.decode()
                return ""
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()


class Helper:
    """One shmk client process (shmk_helper), maybe as another user."""

    def __init__(self, prefix=()):
        self.p = subprocess.Popen(list(prefix) + [HELPER], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE)
        self.out = Lines(self.p.stdout)
        self.pid = int(self.cmd("pid").split()[1])
        self.seg = self.client = None
        self.base = 0

    def cmd(self, line, ok=True):
        self.p.stdin.write((line + "\n").encode())
        self.p.stdin.flush()
        reply = self.out.readline()
        if reply is None:
            raise AssertionError("helper: no answer to %r" % line)
        if ok and not reply.startswith("ok"):
            raise AssertionError("helper: %r -> %r" % (line, reply))
        return reply

    def attach(self, args):
        r = self.cmd("attach " + args)
        m = re.match(r"ok seg=(\d+) client=(\d+) created=(\d)", r)
        self.seg, self.client = int(m.group(1)), int(m.group(2))
        return self

    def map(self):
        self.base = int(self.cmd("map").split("=")[1], 16)
        return self

    def close(self):
        """End of input: the helper exits (reason "exited")."""
        if self.p.poll() is None:
            try:
                self.p.stdin.close()
            except OSError:
                pass
            try:
                self.p.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()

    def kill(self, sig=signal.SIGKILL):
        self.p.send_signal(sig)
        self.p.wait(TIMEOUT)
        self.p.stdin.close()


def shmkctl(*args, prefix=(), check_rc=0):
    r = subprocess.run(list(prefix) + [SHMKCTL] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=TIMEOUT, text=True)
    if check_rc is not None and r.returncode != check_rc:
        raise AssertionError("shmkctl %s: exit %d, expected %d; stderr: %s" %
                             (" ".join(args), r.returncode, check_rc, r.stderr.strip()))
    return r


def sjson(*args, **kw):
    return json.loads(shmkctl(*args, "--json", **kw).stdout)


def cleanup(names):
    for n in names:
        subprocess.run([SHMKCTL, "unlink", n], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=TIMEOUT)


class Param:
    """Raise a module parameter for the duration of a test."""

    def __init__(self, name, at_least):
        self.path = os.path.join(PARAMS, name)
        self.at_least = at_least

    def __enter__(self):
        with open(self.path) as f:
            self.saved = int(f.read())
        if self.saved < self.at_least:
            with open(self.path, "w") as f:
                f.write("%d\n" % self.at_least)
        return self

    def __exit__(self, *exc):
        with open(self.path, "w") as f:
            f.write("%d\n" % self.saved)


# --- tests -------------------------------------------------------------------

def test_json_matches_reality():
    """list/show/clients --json report what the helpers created."""
    names = ["t-json-a", "t-json-b", "t-json-gone"]
    helpers = []
    try:
        t0 = time.time_ns()
        a = Helper().attach("t-json-a create 65536 1048576 0640 writer cname alpha").map()
        helpers.append(a)
        a.cmd("grow 131072")
        b = Helper().attach("t-json-a rdonly cname beta").map()
        helpers.append(b)
        c = Helper().attach("t-json-b create 0 4194304 0600 cname gamma")
        helpers.append(c)
        d = Helper().attach("t-json-gone create 8192 8192 0600 cname delta")
        helpers.append(d)
        shmkctl("unlink", "t-json-gone")
        t1 = time.time_ns()

        segs = {s["segment"]: s for s in sjson("list") if s["segment"] in names}
        check_eq(set(names), set(segs), "segments listed")
        sa, sb, sg = segs["t-json-a"], segs["t-json-b"], segs["t-json-gone"]
        check_eq(a.seg, sa["segment_id"], "id of a")
        check_eq(c.seg, sb["segment_id"], "id of b")
        check_eq(d.seg, sg["segment_id"], "id of the unlinked segment")
        expect = {"size": 131072, "max_size": 1048576, "pages": 131072 // PAGE,
                  "nr_clients": 2, "uid": 0, "gid": 0, "mode": "0640",
                  "generation": 1, "linked": True}
        for k, v in expect.items():
            check_eq(v, sa[k], "t-json-a " + k)
        expect = {"size": 0, "max_size": 4194304, "pages": 0, "nr_clients": 1,
                  "mode": "0600", "generation": 0, "linked": True}
        for k, v in expect.items():
            check_eq(v, sb[k], "t-json-b " + k)
        check_eq(False, sg["linked"], "unlinked segment's linked flag")
        check_eq(1, sg["nr_clients"], "unlinked segment's clients")
        check(t0 - 10**9 <= sa["ctime_ns"] <= t1 + 10**9, "ctime in range")
        check(sa["ctime"].endswith("Z"), "ctime is RFC 3339 UTC")

        cl = [x for x in sjson("clients") if x["segment"] in names]
        check_eq(4, len(cl), "clients listed")
        byname = {x["client"]: x for x in cl}
        for h, n, seg, flags in ((a, "alpha", "t-json-a", ["writer"]),
                                 (b, "beta", "t-json-a", ["rdonly"]),
                                 (c, "gamma", "t-json-b", []),
                                 (d, "delta", "t-json-gone", [])):
            x = byname[n]
            check_eq(h.pid, x["pid"], n + " pid")
            check_eq(h.client, x["client_id"], n + " client id")
            check_eq(h.seg, x["segment_id"], n + " segment id")
            check_eq(seg, x["segment"], n + " segment name")
            check_eq(flags, x["flags"], n + " flags")
            check_eq(h.base, x["base_addr"], n + " base address")
            check(t0 - 10**9 <= x["attach_time_ns"] <= t1 + 10**9, n + " attach time")

        only = sjson("clients", "t-json-a")
        check_eq([a.client, b.client], [x["client_id"] for x in only], "clients of t-json-a")

        show = sjson("show", "t-json-a")
        check_eq(a.seg, show["segment_id"], "show id")
        check_eq(131072, show["size"], "show size")
        check_eq(["alpha", "beta"], [x["client"] for x in show["clients"]], "show clients")

        # The people's view: aligned columns, IEC sizes.
        out = shmkctl("list").stdout.splitlines()
        check(out[0].split()[:3] == ["ID", "NAME", "SIZE"], "list header")
        row = [ln for ln in out if " t-json-a " in ln][0]
        check("128 KiB" in row and "1 MiB" in row and "0640" in row, "list row: " + row)
        check_eq(len(out[0]), len(out[0].rstrip()), "no trailing blanks")
        names_q = shmkctl("list", "-q").stdout.split("\n")
        check("t-json-a" in names_q and "t-json-gone" not in names_q, "list -q")
        out = shmkctl("show", "t-json-a").stdout
        check(re.search(r"^size:\s+128 KiB \(131072 bytes\)$", out, re.M), "show size")
        check(re.search(r"^\s*%d\s+%d\s+alpha\s+writer\s+0x%x\s" % (a.client, a.pid, a.base),
                        out, re.M), "show client row:\n" + out)
    finally:
        for h in helpers:
            h.close()
        cleanup(names)


def test_many_segments():
    """A listing of 300 segments spans several netlink messages."""
    n = 300
    h = Helper()
    try:
        with Param("max_segments", n + 64):
            h.cmd("create-many t-many- %d 4096 65536 0600" % n)
            try:
                segs = [s for s in sjson("list") if s["segment"].startswith("t-many-")]
                check_eq(n, len(segs), "segments listed")
                check_eq(set("t-many-%d" % i for i in range(n)),
                         set(s["segment"] for s in segs), "names")
                ids = [s["segment_id"] for s in segs]
                check_eq(sorted(set(ids)), ids, "ids unique and ascending")
                check(all(s["size"] == 4096 and s["pages"] == 4096 // PAGE for s in segs),
                      "sizes")
                lines = shmkctl("list").stdout.splitlines()
                check_eq(n, sum(1 for ln in lines if " t-many-" in ln), "human rows")
            finally:
                h.cmd("unlink-many t-many- %d" % n)
    finally:
        h.close()


class Watch:
    def __init__(self, *args):
        self.p = subprocess.Popen([SHMKCTL, "watch", "--json"] + list(args),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out = Lines(self.p.stdout)

    def sync(self):
        """Make events until one arrives: the watcher is listening."""
        h = Helper()
        try:
            for i in range(50):
                name = "t-sync-%d" % i
                h.cmd("create-many %s 1 0 4096 0600" % name)
                h.cmd("unlink %s0" % name)
                end = time.monotonic() + 0.5
                while time.monotonic() < end:
                    line = self.out.readline(0.2)
                    if line and json.loads(line).get("segment") == name + "0" and \
                            json.loads(line)["event"] == "destroyed":
                        return
                    if line:
                        continue
            raise AssertionError("the watcher never reported the sync events")
        finally:
            h.close()

    def next(self):
        line = self.out.readline()
        if not line:
            raise AssertionError("watch: no event (%r)" % line)
        return json.loads(line)

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
        self.p.wait(TIMEOUT)


def test_watch_events():
    """watch --json reports a scripted scenario in order."""
    w = Watch()
    helpers = []
    try:
        w.sync()
        seg = "t-watch"
        a = Helper().attach("%s create 65536 1048576 0600 writer cname wa" % seg).map()
        helpers.append(a)
        b = Helper().attach("%s cname wb" % seg)
        helpers.append(b)
        c = Helper().attach("%s rdonly cname wc" % seg).map()
        helpers.append(c)
        a.cmd("grow 262144")
        a.cmd("shrink 131072")
        b.cmd("close")
        c.kill(signal.SIGKILL)
        d = Helper().attach("%s cname wd" % seg)
        helpers.append(d)
        shmkctl("kick", seg, str(d.client))
        d.close()  # its (kicked) handle holds the segment until it goes
        shmkctl("unlink", seg)
        a.close()
        sid = a.seg

        expect = [
            ("created", {"size": 65536, "max_size": 1048576, "uid": 0, "mode": "0600",
                         "actor_pid": a.pid}),
            ("attached", {"client": "wa", "client_id": a.client, "pid": a.pid,
                          "flags": ["writer"], "nr_clients": 1, "actor_pid": a.pid}),
            ("attached", {"client": "wb", "client_id": b.client, "pid": b.pid,
                          "flags": [], "nr_clients": 2, "actor_pid": b.pid}),
            ("attached", {"client": "wc", "client_id": c.client, "pid": c.pid,
                          "flags": ["rdonly"], "nr_clients": 3}),
            ("grown", {"old_size": 65536, "new_size": 262144, "generation": 1,
                       "actor_pid": a.pid}),
            ("shrunk", {"old_size": 262144, "new_size": 131072, "generation": 2,
                        "actor_pid": a.pid}),
            ("detached", {"client": "wb", "reason": "closed", "pid": b.pid,
                          "nr_clients": 2, "actor_pid": b.pid}),
            ("detached", {"client": "wc", "reason": "killed", "pid": c.pid,
                          "nr_clients": 1}),
            ("attached", {"client": "wd", "client_id": d.client, "nr_clients": 2}),
            ("detached", {"client": "wd", "reason": "kicked", "pid": d.pid,
                          "nr_clients": 1}),
            ("detached", {"client": "wa", "reason": "exited", "pid": a.pid,
                          "nr_clients": 0}),
            ("destroyed", {}),
        ]
        for i, (event, fields) in enumerate(expect):
            e = w.next()
            log("event %d: %s" % (i, json.dumps(e)))
            check_eq(event, e["event"], "event %d" % i)
            check_eq(seg, e["segment"], "event %d segment" % i)
            check_eq(sid, e["segment_id"], "event %d segment id" % i)
            for k, v in fields.items():
                check_eq(v, e[k], "event %d (%s) %s" % (i, event, k))
            if event == "detached" and e["reason"] == "kicked":
                check(e["actor_pid"] not in (d.pid, a.pid), "kick acted by shmkctl")
        check(w.out.readline(0.5) is None, "no further event")
    finally:
        w.stop()
        for h in helpers:
            h.close()
        cleanup(["t-watch"])


def test_watch_count():
    """watch --count N prints N events and exits 0; text mode too."""
    for args, parse in ((["--count", "3"], json.loads), (["-c", "2"], None)):
        cmd = [SHMKCTL, "watch"] + args + (["--json"] if parse else [])
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        h = Helper()
        try:
            for i in range(100):
                if p.poll() is not None:
                    break
                h.attach("t-count-%d create 0 4096 0600" % i)
                h.cmd("close")
                h.cmd("unlink t-count-%d" % i)
                time.sleep(0.1)
            out, err = p.communicate(timeout=TIMEOUT)
        finally:
            h.close()
            if p.poll() is None:
                p.kill()
                p.wait()
        check_eq(0, p.returncode, "watch exit status (stderr %r)" % err)
        lines = out.splitlines()
        n = int(args[1])
        check_eq(n, len(lines), "lines printed: %r" % lines)
        for line in lines:
            if parse:
                check("event" in parse(line), "json event")
            else:
                check(re.match(r"^\d\d:\d\d:\d\d\.\d{3}  (created|attached|detached|destroyed) +"
                               r"t-count-\d+ \(id \d+\)", line), "text event: " + line)


def test_permissions():
    """Only the owner or CAP_SYS_ADMIN may unlink or kick."""
    names = ["t-perm-root", "t-perm-nobody"]
    helpers = []
    try:
        r = Helper().attach("t-perm-root create 65536 65536 0666 cname rootc")
        helpers.append(r)
        # Anyone may look.
        segs = [s for s in sjson("list", prefix=NOBODY) if s["segment"] == "t-perm-root"]
        check_eq(1, len(segs), "nobody sees the root segment")

        for args in (["unlink", "t-perm-root"], ["kick", "t-perm-root", str(r.client)]):
            res = shmkctl(*args, prefix=NOBODY, check_rc=1)
            err = res.stderr.strip()
            log("nobody %s: %s" % (" ".join(args), err))
            check_eq(1, len(err.splitlines()), "one line of error")
            check("not the owner of the segment" in err and
                  "Operation not permitted" in err, "EPERM message: " + err)
        check_eq(1, len(sjson("clients", "t-perm-root")), "root's client still attached")
        check_eq(True, sjson("show", "t-perm-root")["linked"], "still linked")

        # Root in a new user namespace is still nobody to the module.
        res = subprocess.run(NOBODY + ["unshare", "-U", "-r", "true"],
                             stderr=subprocess.DEVNULL)
        if res.returncode == 0:
            res = shmkctl("unlink", "t-perm-root", prefix=NOBODY + ["unshare", "-U", "-r"],
                          check_rc=1)
            check("not the owner" in res.stderr, "userns root: " + res.stderr)
        else:
            log("no unprivileged user namespaces here: userns case skipped")

        # The owner may, on its own segment.
        n = Helper(NOBODY).attach("t-perm-nobody create 65536 65536 0600 cname nobodyc")
        helpers.append(n)
        seg = sjson("show", "t-perm-nobody")
        check_eq(65534, seg["uid"], "owner uid")
        check_eq(65534, seg["gid"], "owner gid")
        shmkctl("kick", "t-perm-nobody", str(n.client), prefix=NOBODY)
        check_eq("err ENOTCONN", n.cmd("info", ok=False), "kicked handle")
        shmkctl("unlink", "t-perm-nobody", prefix=NOBODY)
        res = shmkctl("show", "t-perm-nobody", check_rc=1)
        check("segment not found" in res.stderr, "unlinked by its owner")

        # And root may, on anyone's.
        shmkctl("kick", "t-perm-root", str(r.client))
        shmkctl("unlink", "t-perm-root")
    finally:
        for h in helpers:
            h.close()
        cleanup(names)


def test_visibility():
    """Nobody sees only what it could attach to; addresses and events are admin-only."""
    names = ["t-vis-priv", "t-vis-pub"]
    helpers = []
    try:
        priv = Helper().attach("t-vis-priv create 65536 65536 0600 cname privc").map()
        pub = Helper().attach("t-vis-pub create 65536 65536 0644 cname pubc").map()
        helpers += [priv, pub]

        seen = [s["segment"] for s in sjson("list", prefix=NOBODY)]
        check("t-vis-pub" in seen, "nobody sees the 0644 segment: %r" % seen)
        check("t-vis-priv" not in seen, "nobody sees the 0600 segment: %r" % seen)
        for args in (["show", "t-vis-priv"], ["clients", "t-vis-priv"],
                     ["unlink", "t-vis-priv"], ["kick", "t-vis-priv", str(priv.client)]):
            res = shmkctl(*args, prefix=NOBODY, check_rc=1)
            check("segment not found" in res.stderr,
                  "nobody %s: %s" % (" ".join(args), res.stderr.strip()))
        cl = sjson("clients", prefix=NOBODY)
        check_eq(["pubc"], [c["client"] for c in cl if c["segment"].startswith("t-vis-")],
                 "clients nobody sees")
        check_eq(0, [c for c in cl if c["client"] == "pubc"][0]["base_addr"],
                 "no mapping address for nobody")
        # Root (CAP_SYS_ADMIN) sees both, with the addresses.
        cl = {c["client"]: c for c in sjson("clients")}
        check_eq(pub.base, cl["pubc"]["base_addr"], "root sees the address")
        check_eq(priv.base, cl["privc"]["base_addr"], "root sees the address")

        # Events name every segment: CAP_SYS_ADMIN only.
        res = shmkctl("watch", "--count", "1", prefix=NOBODY, check_rc=1)
        check("cannot join" in res.stderr and "CAP_SYS_ADMIN" in res.stderr,
              "watch as nobody: " + res.stderr.strip())
    finally:
        for h in helpers:
            h.close()
        cleanup(names)


def test_kick_sigbus():
    """A kicked client gets SIGBUS in the segment; its peers carry on."""
    helpers = []
    try:
        a = Helper().attach("t-kick create 65536 1048576 0600 writer cname ka").map()
        b = Helper().attach("t-kick cname kb").map()
        c = Helper().attach("t-kick cname kc").map()
        helpers += [a, b, c]
        a.cmd("write 0 11")
        check_eq("ok 11", b.cmd("read 0"), "b reads before the kick")

        shmkctl("kick", "t-kick", str(b.client))
        check_eq("sigbus", b.cmd("read 0", ok=False), "kicked read")
        check_eq("sigbus", b.cmd("write 8 1", ok=False), "kicked write")
        check_eq("err ENOTCONN", b.cmd("info", ok=False), "kicked handle")
        check_eq("err ENOTCONN", b.cmd("grow 131072", ok=False), "kicked grow")

        # The others keep reading and writing, old and new pages alike.
        check_eq("ok 11", c.cmd("read 0"), "c reads after the kick")
        c.cmd("write 16 22")
        check_eq("ok 22", a.cmd("read 16"), "a sees c's write")
        a.cmd("grow 262144")
        c.cmd("write 200000 33")
        check_eq("ok 33", a.cmd("read 200000"), "a sees c's write in the new range")
        check_eq("sigbus", b.cmd("read 200000", ok=False), "kicked, new range")
        check_eq([a.client, c.client], [x["client_id"] for x in sjson("clients", "t-kick")],
                 "clients after the kick")
        check_eq(2, sjson("show", "t-kick")["nr_clients"], "nr_clients")

        res = shmkctl("kick", "t-kick", str(b.client), check_rc=1)
        check("client not found" in res.stderr, "second kick: " + res.stderr)
    finally:
        for h in helpers:
            h.close()
        cleanup(["t-kick"])


SEGMENT_KEYS = {"segment_id", "segment", "linked", "size", "max_size", "pages",
                "nr_clients", "uid", "gid", "mode", "generation", "ctime", "ctime_ns"}
CLIENT_KEYS = {"segment_id", "segment", "client_id", "client", "pid", "flags",
               "base_addr", "attach_time", "attach_time_ns"}


def test_keys_and_ids():
    """One set of JSON keys everywhere; segments addressed by id, unlinked too."""
    w = Watch()
    helpers = []
    try:
        w.sync()
        t0 = time.time_ns()
        a = Helper().attach("t-byid create 65536 1048576 0600 writer cname ia").map()
        b = Helper().attach("t-byid cname ib").map()
        helpers += [a, b]
        t1 = time.time_ns()

        # The same keys, meaning the same thing, in every command.
        seg = [s for s in sjson("list") if s["segment"] == "t-byid"][0]
        check_eq(SEGMENT_KEYS, set(seg), "list keys")
        show = sjson("show", "t-byid")
        check_eq(SEGMENT_KEYS | {"clients"}, set(show), "show keys")
        check_eq(a.seg, show["segment_id"], "show segment_id")
        for x in show["clients"] + sjson("clients") + sjson("clients", "t-byid"):
            check_eq(CLIENT_KEYS, set(x), "client keys")
        ev = [w.next() for _ in range(3)]
        check_eq(["created", "attached", "attached"], [e["event"] for e in ev], "events")
        for e in ev:
            check(t0 - 10**9 <= e["time_ns"] <= time.time_ns(), "event time_ns")
            check(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", e["time"]),
                  "event time: " + e["time"])
            check_eq(a.seg, e["segment_id"], "event segment_id")
            check_eq("t-byid", e["segment"], "event segment")
        check_eq({"event", "time", "time_ns", "segment_id", "segment", "client_id",
                  "client", "pid", "flags", "nr_clients", "actor_pid"}, set(ev[1]),
                 "attached event keys")
        cl = {x["client_id"]: x for x in show["clients"]}
        for e in ev[1:]:
            x = cl[e["client_id"]]
            for k in ("segment_id", "segment", "client_id", "client", "pid", "flags"):
                check_eq(x[k], e[k], "event and clients agree on " + k)
        check(t0 - 10**9 <= seg["ctime_ns"] <= t1 + 10**9, "ctime_ns")

        # By id: show, clients, kick, even once the name is gone.
        sid = "id:%d" % a.seg
        check_eq(show, sjson("show", sid), "show by id")
        shmkctl("unlink", "t-byid")
        res = shmkctl("show", "t-byid", check_rc=1)
        check("segment not found" in res.stderr, "unlinked: no longer by name")
        check_eq(False, sjson("show", sid)["linked"], "unlinked, by id")
        check_eq([a.client, b.client], [x["client_id"] for x in sjson("clients", sid)],
                 "clients by id")
        shmkctl("kick", sid, str(b.client))
        check_eq("sigbus", b.cmd("read 0", ok=False), "kicked by id")
        check_eq([a.client], [x["client_id"] for x in sjson("clients", sid)],
                 "clients after the kick by id")
        res = shmkctl("unlink", sid, check_rc=1)
        check("already unlinked" in res.stderr, "unlink of an unlinked id: " + res.stderr)
        res = shmkctl("kick", "id:4000000000", "1", check_rc=1)
        check("segment not found" in res.stderr, "kick of a missing id: " + res.stderr)
        shmkctl("show", "id:x", check_rc=2)

        # unlink by id; name: takes a name that looks like an id.
        c = Helper().attach("t-byid2 create 65536 65536 0600 cname ic")
        helpers.append(c)
        shmkctl("unlink", "id:%d" % c.seg)
        check_eq(False, sjson("show", "id:%d" % c.seg)["linked"], "unlinked by id")
        d = Helper().attach("id:7 create 65536 65536 0600 cname id")
        helpers.append(d)
        check_eq(d.seg, sjson("show", "name:id:7")["segment_id"], "name:id:7")
        shmkctl("unlink", "name:id:7")
    finally:
        w.stop()
        for h in helpers:
            h.close()
        cleanup(["t-byid", "t-byid2", "name:id:7"])


def test_namespaces():
    """Another netns cannot see the family; pid and user ns translate."""
    expect = ('shmkctl: the generic netlink family "shmk" is not visible in this '
              'network namespace (shmk serves the initial network namespace only)')
    res = subprocess.run(["unshare", "-n", SHMKCTL, "list"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, timeout=TIMEOUT)
    check_eq(1, res.returncode, "exit status in a new netns")
    check_eq(expect, res.stderr.strip(), "message in a new netns")

    h = None
    try:
        h = Helper().attach("t-ns create 65536 65536 0600 cname outer")
        # A user namespace without a mapping sees root as the overflow uid.
        # (No user namespaces for a chrooted process: the VM rig runs tests
        # in a mount namespace of their own instead of a chroot.)
        if subprocess.run(["unshare", "-U", "true"], stderr=subprocess.DEVNULL).returncode:
            log("cannot create a user namespace here (chroot?): userns case skipped")
        else:
            out = subprocess.run(["unshare", "-U", SHMKCTL, "show", "t-ns", "--json"],
                                 stdout=subprocess.PIPE, text=True, timeout=TIMEOUT,
                                 check=True)
            check_eq(65534, json.loads(out.stdout)["uid"], "uid in a new user namespace")
        # A pid namespace sees 0 for a client outside it, its own pids inside.
        script = ('(echo "attach t-ns cname inner"; echo pid; sleep 3) | %s & '
                  'sleep 1.5; %s clients t-ns --json; wait' % (HELPER, SHMKCTL))
        out = subprocess.run(["unshare", "-p", "-f", "sh", "-c", script],
                             stdout=subprocess.PIPE, text=True, timeout=TIMEOUT, check=True)
        lines = out.stdout.splitlines()
        inner_pid = int([ln for ln in lines if re.match(r"^ok \d+$", ln)][0].split()[1])
        cl = {x["client"]: x for x in json.loads([ln for ln in lines if ln.startswith("[")][0])}
        check_eq(0, cl["outer"]["pid"], "outside client seen from inside")
        check_eq(inner_pid, cl["inner"]["pid"], "inside client seen from inside")
        check(inner_pid < 10, "pid inside is small: %d" % inner_pid)
    finally:
        if h:
            h.close()
        cleanup(["t-ns"])


def test_cli_errors():
    """Usage errors exit 2, failures 1, each with one line naming the cause."""
    for args in (["frobnicate"], ["show"], ["kick", "x"], ["kick", "x", "y"],
                 ["list", "extra"], ["show", "x" * 64], ["--bogus"], [],
                 ["unlink", "x", "--json"], ["list", "--count", "1"]):
        res = shmkctl(*args, check_rc=2)
        check(res.stderr.startswith("shmkctl: ") or res.stderr.startswith("shmkctl:"),
              "usage message for %r: %r" % (args, res.stderr))
    res = shmkctl("show", "t-absent", check_rc=1)
    check_eq("shmkctl: show t-absent: segment not found (No such file or directory)",
             res.stderr.strip(), "not found message")
    res = shmkctl("clients", "t-absent", check_rc=1)
    check("segment not found" in res.stderr, "clients of a missing segment")
    check(re.match(r"^shmkctl \S+ \(shmk generic netlink version 1\)$",
                   shmkctl("--version").stdout.strip()), "--version")
    check("Usage: shmkctl" in shmkctl("--help").stdout, "--help")


class QueueReceiver:
    """queue_helper: a libshmk queue's receiver, with N messages queued."""

    def __init__(self, seg, queue, cap, n, prefix=()):
        self.p = subprocess.Popen(list(prefix) + [QHELPER, seg, queue, str(cap), str(n)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.out = Lines(self.p.stdout)
        r = self.out.readline()
        if not r or not r.startswith("ready "):
            self.p.kill()
            self.p.wait()
            raise AssertionError("queue_helper: %r" % r)
        self.pid = int(r.split()[1])

    def recv(self, k):
        self.p.stdin.write(("recv %d\n" % k).encode())
        self.p.stdin.flush()
        check_eq("ok", self.out.readline(), "queue_helper recv")

    def quit(self):
        if self.p.poll() is None:
            self.p.stdin.write(b"quit\n")
            self.p.stdin.close()
            check_eq(0, self.p.wait(TIMEOUT), "queue_helper exit status")


QUEUE_KEYS = {"segment", "queue", "receiver_pid", "capacity", "queued", "sent",
              "received", "high_water", "senders_blocked"}


def queues(seg, **kw):
    return {q["queue"]: q for q in sjson("queues", seg, **kw)}


def test_queues_and_images():
    """shmkctl queues, save, load and image-info on a segment with a queue."""
    img = "/tmp/t-queues.img"
    names = ["t-queues", "t-queues2", "t-queues-ns"]
    cleanup(names)
    if os.path.exists(img):
        os.unlink(img)
    rx = None
    try:
        rx = QueueReceiver("t-queues", "jobs", 16, 5)
        q = queues("t-queues")
        check_eq({"jobs"}, set(q), "queue names")
        check_eq(QUEUE_KEYS, set(q["jobs"]), "queue keys")
        check_eq(("t-queues", rx.pid, 16, 5, 5, 0, 0),
                 tuple(q["jobs"][k] for k in ("segment", "receiver_pid", "capacity",
                                              "queued", "sent", "received",
                                              "senders_blocked")), "queue counters")
        rx.recv(2)
        q = queues("t-queues")["jobs"]
        check_eq((3, 5, 2, 5), (q["queued"], q["sent"], q["received"], q["high_water"]),
                 "counters after two receives")
        text = shmkctl("queues", "t-queues").stdout.splitlines()
        check(text[0].split()[:3] == ["QUEUE", "RECEIVER", "CAPACITY"], "header %r" % text[0])
        check_eq(["jobs", str(rx.pid), "16", "3", "5", "2", "5", "0"], text[1].split(),
                 "table row")
        # Nothing shown to those who may not attach (the segment is 0600).
        res = shmkctl("queues", "t-queues", prefix=NOBODY, check_rc=1)
        check_eq("shmkctl: cannot open segment t-queues: Permission denied",
                 res.stderr.strip(), "queues without access")

        # An image keeps the queue and what is queued; a load has no receiver.
        shmkctl("save", "t-queues", img)
        objs = json.loads(shmkctl("image-info", img, "--json").stdout)["objects"]
        check("shmk.queue/jobs" in [o["name"] for o in objs], "image-info objects")
        rx.quit()
        q = queues("t-queues")["jobs"]
        check_eq((0, 3), (q["receiver_pid"], q["queued"]), "receiver gone")
        shmkctl("load", img, "t-queues2")
        q = queues("t-queues2")["jobs"]
        check_eq((0, 16, 3, 5, 2), (q["receiver_pid"], q["capacity"], q["queued"],
                                    q["sent"], q["received"]), "loaded queue")

        # A receiver in another pid namespace: its pid would mean nothing here.
        try:
            rx = QueueReceiver("t-queues-ns", "ns", 8, 1,
                               prefix=["unshare", "--pid", "--fork", "--mount-proc"])
        except (OSError, AssertionError) as e:
            raise Skip("no pid namespace with its own /proc here: %s" % e)
        check_eq(1, rx.pid, "pid in its own namespace")
        q = queues("t-queues-ns")["ns"]
        check_eq((-1, 1), (q["receiver_pid"], q["queued"]), "receiver in another pid namespace")
        row = shmkctl("queues", "t-queues-ns").stdout.splitlines()[1].split()
        check_eq(["ns", "other-ns"], row[:2], "other-ns in the table")
        rx.quit()
        rx = None

        for args in (["queues"], ["queues", "a", "b"], ["queues", "x" * 64]):
            shmkctl(*args, check_rc=2)
        res = shmkctl("queues", "t-absent", check_rc=1)
        check_eq("shmkctl: cannot open segment t-absent: No such file or directory",
                 res.stderr.strip(), "queues of a missing segment")
    finally:
        if rx:
            rx.p.kill()
            rx.p.wait()
        cleanup(names)
        if os.path.exists(img):
            os.unlink(img)


TESTS = [test_json_matches_reality, test_many_segments, test_watch_events,
         test_watch_count, test_permissions, test_visibility, test_kick_sigbus,
         test_keys_and_ids, test_namespaces, test_queues_and_images,
         test_cli_errors]


def main():
    sel = sys.argv[1:]
    tests = [t for t in TESTS if not sel or t.__name__ in sel or
             t.__name__[5:] in sel]
    if os.geteuid() != 0 or not os.path.exists("/sys/module/shmk"):
        print("1..0 # SKIP needs root and the shmk module loaded")
        return 4
    for p in (SHMKCTL, HELPER, QHELPER):
        if not os.access(p, os.X_OK):
            print("Bail out! %s is not built (make -C selftests/netlink)" % p)
            return 1
    print("TAP version 13")
    print("1..%d" % len(tests))
    failed = 0
    for i, t in enumerate(tests, 1):
        name = t.__name__[5:]
        try:
            t()
            print("ok %d %s" % (i, name), flush=True)
        except Skip as e:
            print("ok %d %s # SKIP %s" % (i, name, e), flush=True)
        except Exception:
            log(traceback.format_exc())
            print("not ok %d %s" % (i, name), flush=True)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
