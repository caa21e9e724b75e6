"""tests/cli/review_test.py -- `earmark review` end to end: a private
PostgreSQL cluster, a small real catalog, clips uploaded over real HTTP to
`earmark serve`, then the review of the matches the service stored.

Run by tests/cli/review.sh.  Environment: EARMARK_BIN (the built earmark).
Checks: the queue and its filters and orders, show, confirm, dismiss and
reopen with the reviewer and the notes they need, the append-only audit
log (refused UPDATE and DELETE, no state change without a log row),
bulk decisions and their prompt, export as CSV and JSON, statistics, the
SVG picture (valid XML; the aligned points of a true match on one line),
tenant scoping, and the CLI manners of every earmark command (--help, exit
codes 0/1/2).
"""
import csv
import http.client
import io
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import EM, MUSIC, check, failures, index_two_tenants, scratch, sox  # noqa: E402




tmp, ENV = scratch("earmark-review-")
server = None


def run(*args, env=None, stdin=None):
    e = dict(ENV)
    e.update(env or {})
    return subprocess.run([EM] + list(args), capture_output=True, text=True, env=e,
                          stdin=stdin if stdin is not None else subprocess.DEVNULL)


def review(*args, env=None):
    return run("review", *args, env=env)


def jsonl(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def cleanup():
    if server and server.poll() is None:
        server.kill()
    run("db", "stop")
    shutil.rmtree(tmp, ignore_errors=True)



def upload(port, key, path, ref):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("POST", "/v1/matches?client_ref=" + ref, body=open(path, "rb").read(),
              headers={"Content-Type": "audio/wav", "Authorization": "Bearer " + key})
    r = c.getresponse()
    doc = json.loads(r.read())
    c.close()
    return r.status, doc


def start_server():
    """`earmark serve` on a free loopback port, its log appended to
    serve.log; returns the process and the port."""
    port_file = os.path.join(tmp, "port")
    if os.path.exists(port_file):
        os.unlink(port_file)
    log = open(os.path.join(tmp, "serve.log"), "a")
    p = subprocess.Popen([EM, "serve", "--port", "0", "--port-file", port_file, "--workers", "2"],
                         env=ENV, stderr=log)
    for _ in range(200):
        if os.path.exists(port_file):
            break
        time.sleep(0.05)
    return p, int(open(port_file).read())


def line_fit(xs, ys):
    """Least-squares line y = a x + b; returns (a, b, residuals)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    a = sxy / sxx if sxx else 0.0
    b = my - a * mx
    return a, b, [y - (a * x + b) for x, y in zip(xs, ys)]


def on_one_line(xs, ys, tol):
    """95% of the points within tol of the fitted line (distance, pixels)."""
    if len(xs) < 10:
        return False, None
    a, b, res = line_fit(xs, ys)
    dist = sorted(abs(r) / math.sqrt(1 + a * a) for r in res)
    p95 = dist[int(0.95 * (len(dist) - 1))]
    return p95 <= tol, (a, p95)


try:
    # -- CLI manners of every command -----------------------------------------------
    for cmd in ("fingerprint", "match", "index", "catalog", "review", "keys", "serve", "db"):
        r = run(cmd, "--help")
        check("earmark %s --help: exit 0 with usage on stdout" % cmd,
              r.returncode == 0 and "usage" in r.stdout.lower(), (r.returncode, r.stderr[-200:]))
        r = run(cmd, "--no-such-option")
        check("earmark %s --no-such-option: exit 2, the error on stderr" % cmd,
              r.returncode == 2 and r.stderr.strip() and not r.stdout.strip(),
              (r.returncode, r.stdout[-200:], r.stderr[-200:]))
    for act in ("list", "show", "confirm", "dismiss", "reopen", "export", "stats"):
        r = review(act, "--help")
        check("earmark review %s --help: exit 0" % act, r.returncode == 0 and "usage" in r.stdout,
              r.returncode)
    for sub in (("catalog", "ls"), ("catalog", "show"), ("keys", "create"), ("db", "status")):
        r = run(*sub, "--help")
        check("earmark %s %s --help: exit 0" % sub, r.returncode == 0 and "usage" in r.stdout,
              (r.returncode, r.stderr[-200:]))
    r = run("no-such-command")
    check("an unknown command: exit 2", r.returncode == 2, r.returncode)
    r = review("list", "--status", "maybe")
    check("a bad --status: exit 2 naming the states",
          r.returncode == 2 and "pending, confirmed or dismissed" in r.stderr, r.stderr)
    r = review("list", "--since", "yesterday-ish")
    check("a bad --since: exit 2", r.returncode == 2, r.returncode)
    r = review("confirm", "1")
    check("a decision without a reviewer: refused (exit 2, says how to name one)",
          r.returncode == 2 and "EARMARK_REVIEWER" in r.stderr, (r.returncode, r.stderr))

    # -- a catalog, a server, uploads ------------------------------------------------------
    assert run("db", "start").returncode == 0, "db start"
    assert run("db", "migrate").returncode == 0, "db migrate"
    r = review("list")
    check("an empty queue: exit 0, says so", r.returncode == 0 and "no matches" in r.stdout,
          (r.returncode, r.stdout, r.stderr))
    index_two_tenants(run)
    key_a = run("keys", "create", "--tenant", "acme", "--name", "t").stdout.strip()
    key_b = run("keys", "create", "--tenant", "other", "--name", "t").stdout.strip()

    clips = {}
    for name, src, fx in (("lava", "Lava.ogg", ["trim", "40", "12", "speed", "1.05"]),
                          ("snowy", "Snowy.ogg", ["trim", "30", "10"]),
                          ("bay", "bay.ogg", ["trim", "20", "10"]),
                          ("egypt", "egypt.ogg", ["trim", "25", "10"])):
        clips[name] = os.path.join(tmp, name + ".wav")
        sox(MUSIC + "/" + src, clips[name], *fx)

    server, port = start_server()

    found = {}
    for name, key in (("lava", key_a), ("snowy", key_a), ("bay", key_a), ("egypt", key_b)):
        st, doc = upload(port, key, clips[name], "clip-" + name)
        ok = st == 200 and doc["matches"]
        check("upload %s over HTTP: a match" % name, ok, (st, doc))
        if ok:
            found[name] = doc
    server.terminate()
    server.wait(timeout=30)

    # -- the queue --------------------------------------------------------------------------
    r = review("list", "--json")
    rows = jsonl(r.stdout)
    check("review list --json: every stored match", r.returncode == 0 and len(rows) >= 4,
          (r.returncode, len(rows), r.stderr))
    by_ref = {}
    for row in rows:
        by_ref.setdefault(row["client_ref"], row)
    lava = by_ref.get("clip-lava")
    check("the HTTP upload is in the queue, pending, with its recording",
          lava is not None and lava["status"] == "pending" and lava["tenant"] == "acme"
          and lava["track_id"] == found["lava"]["matches"][0]["track_id"], lava)
    check("newest first", [x["id"] for x in rows] == sorted((x["id"] for x in rows), reverse=True),
          [x["id"] for x in rows])
    r = review("list", "--sort", "strongest", "--json")
    scores = [x["score"] for x in jsonl(r.stdout)]
    check("--sort strongest: scores never rise", scores == sorted(scores, reverse=True), scores)
    r = review("list")
    lines = r.stdout.splitlines()
    check("the terminal table: a header and one row per match",
          lines and lines[0].split()[:3] == ["id", "found", "(UTC)"] and len(lines) == len(rows) + 1,
          r.stdout)
    widths = {len(l.split("  acme  ")[0]) for l in lines[1:] if "  acme  " in l}
    check("the table's columns are aligned", len(widths) == 1, widths)
    r = review("list", "--csv")
    crow = list(csv.DictReader(io.StringIO(r.stdout)))
    check("review list --csv: parses, one row per match",
          len(crow) == len(rows) and crow[0]["id"] == str(rows[0]["id"]), crow[:1])
    lava_id = lava["id"] if lava else 0
    checks = [
        (["--track", str(lava["track_id"])] if lava else [], lambda x: x["track_id"] == lava["track_id"]),
        (["--min-score", "1000000"], lambda x: False),
        (["--since", "2000-01-01"], lambda x: True),
        (["--until", "2000-01-01"], lambda x: False),
        (["--flag", lava["flag"]] if lava else [], lambda x: x["flag"] == lava["flag"]),
        (["--status", "confirmed"], lambda x: False),
    ]
    for args, keep in checks:
        got = sorted(x["id"] for x in jsonl(review("list", "--json", *args).stdout))
        want = sorted(x["id"] for x in rows if keep(x))
        check("filter %s" % " ".join(args), got == want, (got, want))

    # -- show --------------------------------------------------------------------------------
    r = review("show", str(lava_id))
    check("review show: the upload, the segments, the recording, no decision yet",
          r.returncode == 0 and "clip-lava" in r.stdout and "segments" in r.stdout
          and "Lava" in r.stdout and "no decision yet" in r.stdout, r.stdout + r.stderr)
    check("review show says what changed: the clip is 5% faster", "speed +5.0%" in r.stdout, r.stdout)
    r = review("show", str(lava_id), "--json")
    doc = json.loads(r.stdout) if r.returncode == 0 else {}
    ev = doc.get("evidence") or {}
    check("review show --json: evidence with segments, aligned points and query peaks",
          len(ev.get("segments", [])) >= 1 and len(ev.get("points", [])) >= 20
          and len(ev.get("query_peaks", [])) >= 50, {k: len(v) if isinstance(v, list) else v for k, v in ev.items()})
    r = review("show", "999999")
    check("show of no such match: exit 1 with a hint",
          r.returncode == 1 and "no match" in r.stderr and "hint" in r.stderr, r.stderr)

    # -- the picture ---------------------------------------------------------------------------
    svg = os.path.join(tmp, "lava.svg")
    r = review("show", str(lava_id), "--plot", svg)
    check("--plot writes the file", r.returncode == 0 and os.path.exists(svg), r.stderr)
    try:
        root = ET.parse(svg).getroot()
        check("the SVG is valid XML with an svg root", root.tag == "{http://www.w3.org/2000/svg}svg", root.tag)
    except (ET.ParseError, OSError) as e:
        root = None
        check("the SVG is valid XML", False, e)
    if root is not None:
        ns = "{http://www.w3.org/2000/svg}"
        pts = [(float(c.get("cx")), float(c.get("cy"))) for c in root.iter(ns + "circle")
               if c.get("class") == "aligned"]
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        ok, fit = on_one_line(xs, ys, 3.0)
        check("the aligned prints of a true match lie on one line (95%% within 3 px): %d points, fit %s"
              % (len(pts), fit), ok and len(pts) >= 20, fit)
        # equal scales, y growing downwards: slope -speed
        check("the line's slope is the clip's speed (1.05)", fit and abs(-fit[0] - 1.05) < 0.03, fit)
        shuffled = ys[:]
        random.Random(7).shuffle(shuffled)
        bad, badfit = on_one_line(xs, shuffled, 3.0)
        check("the same check rejects the points with reference times shuffled", not bad, badfit)
        segs = [e for e in root.iter(ns + "line") if e.get("class") == "segment"]
        check("the segments are drawn", len(segs) >= 1, len(segs))
        q = [c for c in root.iter(ns + "circle") if c.get("class") == "qpeak"]
        rf = [c for c in root.iter(ns + "circle") if c.get("class") == "rpeak"]
        check("the spectral peaks of the query and of the reference excerpt are drawn",
              len(q) >= 50 and len(rf) >= 50, (len(q), len(rf)))
        check("the picture has a title naming the recording", "Lava" in ET.tostring(root, encoding="unicode"))

    # -- decisions -------------------------------------------------------------------------------
    alice = {"EARMARK_REVIEWER": "alice"}
    r = review("confirm", str(lava_id), "--note", "same master, sped up", env=alice)
    check("confirm: exit 0", r.returncode == 0 and "confirmed" in r.stdout, (r.returncode, r.stderr))
    r = review("confirm", str(lava_id), env=alice)
    check("confirming again: exit 1, already confirmed",
          r.returncode == 1 and "already confirmed" in r.stderr, r.stderr)
    r = review("list", "--json", "--status", "confirmed")
    got = jsonl(r.stdout)
    check("the confirmed match, with who decided",
          [x["id"] for x in got] == [lava_id] and got[0]["decided_by"] == "alice"
          and got[0]["note"] == "same master, sped up", got)

    snowy_id = by_ref["clip-snowy"]["id"] if "clip-snowy" in by_ref else 0
    r = review("dismiss", str(snowy_id), "--reviewer", "bob")
    check("dismiss another (--reviewer)", r.returncode == 0, r.stderr)
    r = review("reopen", str(snowy_id), "--reviewer", "bob")
    check("reopening without a reason: refused, exit 1, asks for --note",
          r.returncode == 1 and "--note" in r.stderr, r.stderr)
    r = review("reopen", str(snowy_id), "--reviewer", "bob", "--note", "licence under dispute")
    check("reopening with a reason", r.returncode == 0, r.stderr)
    r = review("show", str(snowy_id), "--json")
    hist = json.loads(r.stdout)["history"] if r.returncode == 0 else []
    check("the history keeps both decisions, in order",
          [(h["from"], h["to"], h["reviewer"]) for h in hist] ==
          [("pending", "dismissed", "bob"), ("dismissed", "pending", "bob")]
          and hist[1]["note"] == "licence under dispute", hist)
    check("the match is pending again", json.loads(r.stdout)["status"] == "pending")
    r = review("show", str(snowy_id))
    check("show prints the history", "pending   -> dismissed" in r.stdout and "licence under dispute" in r.stdout,
          r.stdout)

    # -- the audit log cannot be rewritten -------------------------------------------------------
    r = run("db", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c",
            "UPDATE review_log SET reviewer = 'mallory'")
    check("UPDATE of the audit log: refused", r.returncode != 0 and "append-only" in r.stderr, r.stderr)
    r = run("db", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", "DELETE FROM review_log")
    check("DELETE from the audit log: refused", r.returncode != 0 and "append-only" in r.stderr, r.stderr)
    r = run("db", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c",
            "UPDATE matches SET status = 'dismissed' WHERE id = %d" % lava_id)
    check("changing a match's state without a log row: refused", r.returncode != 0, r.stderr)
    r = run("db", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c",
            "DELETE FROM uploads WHERE id = (SELECT upload_id FROM matches WHERE id = %d)" % lava_id)
    check("deleting a reviewed match's upload: refused", r.returncode != 0, r.stderr)

    # -- export --------------------------------------------------------------------------------
    r = review("export", "--format", "json")
    exp = {x["id"]: x for x in jsonl(r.stdout)}
    e = exp.get(lava_id, {})
    check("export json: the decision, the evidence and the audit history",
          e.get("status") == "confirmed" and e.get("evidence", {}).get("points")
          and [h["reviewer"] for h in e.get("history", [])] == ["alice"], e.get("history"))
    out = os.path.join(tmp, "export.csv")
    r = review("export", "--output", out)
    crow = {int(x["id"]): x for x in csv.DictReader(open(out))} if r.returncode == 0 else {}
    c = crow.get(lava_id, {})
    check("export csv: the decision, the segments, the history",
          c.get("status") == "confirmed" and c.get("decided_by") == "alice"
          and "@" in c.get("segments", "") and "alice pending>confirmed" in c.get("history", ""), c)
    check("export csv: every match", len(crow) == len(rows), (len(crow), len(rows)))

    # -- tenant scope ----------------------------------------------------------------------------
    other = {"EARMARK_TENANT": "other"}
    got = jsonl(review("list", "--json", env=other).stdout)
    check("a reviewer scoped to a tenant lists only its matches",
          got and all(x["tenant"] == "other" for x in got), got)
    r = review("show", str(lava_id), env=other)
    check("... cannot see another tenant's match (not found)", r.returncode == 1 and "no match" in r.stderr,
          (r.returncode, r.stdout))
    r = review("dismiss", str(lava_id), "--note", "x", env=dict(other, **alice))
    check("... cannot decide on it", r.returncode == 1, r.returncode)
    r = review("dismiss", "--all-matching", "--yes", "--note", "x", env=dict(other, **alice))
    check("... a bulk decision stays in the tenant", r.returncode == 0, r.stderr)
    got = {x["id"]: x for x in jsonl(review("list", "--json").stdout)}
    check("... and acme's matches are untouched",
          got[lava_id]["status"] == "confirmed" and got[snowy_id]["status"] == "pending",
          (got[lava_id]["status"], got[snowy_id]["status"]))
    r = review("export", "--format", "json", "--tenant", "other")
    check("... export sees only the tenant", all(x["tenant"] == "other" for x in jsonl(r.stdout)))
    r = review("stats", "--json", env=other)
    check("... stats see only the tenant", all(x["tenant"] == "other" for x in jsonl(r.stdout)),
          r.stdout)

    # -- bulk decisions --------------------------------------------------------------------------
    r = review("dismiss", "--all-matching", "--tenant", "acme", "--status", "pending", env=alice)
    check("a bulk decision off a terminal without --yes: refused, exit 2",
          r.returncode == 2 and "--yes" in r.stderr, (r.returncode, r.stderr))
    pend = [x for x in rows if x["tenant"] == "acme" and x["id"] != lava_id]
    r = review("dismiss", "--all-matching", "--tenant", "acme", "--status", "pending", "--yes",
               env=alice)
    check("a bulk decision with --yes", r.returncode == 0 and ("%d match" % len(pend)) in r.stdout,
          (r.stdout, r.stderr, len(pend)))
    r = review("reopen", "--all-matching", "--tenant", "acme", "--yes", env=alice)
    check("reopening in bulk without a reason: refused", r.returncode == 1 and "--note" in r.stderr,
          r.stderr)

    # -- stats ------------------------------------------------------------------------------------
    r = review("stats", "--json")
    st = jsonl(r.stdout)
    now = jsonl(review("list", "--json").stdout)
    want = {}
    for x in now:
        k = (x["tenant"], x["flag"])
        w = want.setdefault(k, {"total": 0, "pending": 0, "confirmed": 0, "dismissed": 0})
        w["total"] += 1
        w[x["status"]] += 1
    got = {(x["tenant"], x["flag"]): {k: x[k] for k in ("total", "pending", "confirmed", "dismissed")}
           for x in st}
    check("stats: counts by tenant, flag and decision", got == want, (got, want))
    rates_ok = all(
        (x["dismissal_rate"] is None and x["confirmed"] + x["dismissed"] == 0)
        or abs(x["dismissal_rate"] - x["dismissed"] / (x["confirmed"] + x["dismissed"])) < 1e-3
        for x in st)
    check("stats: the dismissal rate of each flag", rates_ok and st, st)
    r = review("stats")
    check("stats on a terminal: a table with the rate", r.returncode == 0 and "dismissal rate" in r.stdout,
          r.stdout)

    # -- copies: bay.ogg indexed again as FLAC; its match and the copy's decided together -----------
    bay_flac = os.path.join(tmp, "bay_copy.flac")
    subprocess.run(["sox", "-V1", MUSIC + "/bay.ogg", bay_flac], check=True)
    r = run("index", "--quiet", "--tenant", "acme", bay_flac)
    check("a copy of bay indexed", r.returncode == 0, r.stderr)
    server, port = start_server()
    st, doc = upload(port, key_a, clips["bay"], "clip-bay-copies")
    server.terminate()
    server.wait(timeout=30)
    check("the upload of bay: one match, one copy",
          st == 200 and len(doc["matches"]) == 1 and len(doc["matches"][0]["copies"]) == 1, (st, doc))
    rows = [x for x in jsonl(review("list", "--json").stdout) if x["client_ref"] == "clip-bay-copies"]
    check("the queue holds both copies as matches", len(rows) == 2, rows)
    if len(rows) == 2:
        first, second = sorted(rows, key=lambda x: x["id"])
        check("each lists the other as a copy of its audio",
              [c["match_id"] for c in first["copies"] or []] == [second["id"]] and
              [c["match_id"] for c in second["copies"] or []] == [first["id"]], rows)
        r = review("show", str(first["id"]))
        check("show names the copy", r.returncode == 0 and "same audio" in r.stdout and
              "match %d (track %d)" % (second["id"], second["track_id"]) in r.stdout, r.stdout)
        r = review("dismiss", str(second["id"]), env={"EARMARK_REVIEWER": "erin"})
        got = {x["id"]: x["status"] for x in jsonl(review("list", "--json").stdout)}
        check("a decision on one copy leaves the other alone",
              r.returncode == 0 and got[second["id"]] == "dismissed" and got[first["id"]] == "pending",
              (r.stderr, got))
        r = review("confirm", str(first["id"]), "--all-copies", "--note", "both hold the master",
                   env={"EARMARK_REVIEWER": "erin"})
        got = {x["id"]: x["status"] for x in jsonl(review("list", "--json").stdout)}
        check("--all-copies decides the match and its copy, each logged",
              r.returncode == 0 and "2 now confirmed" in r.stdout and
              got[first["id"]] == got[second["id"]] == "confirmed", (r.stdout, r.stderr, got))
        h = json.loads(review("show", str(second["id"]), "--json").stdout)["history"]
        check("... the copy's history: dismissed, then confirmed with the note",
              [x["to"] for x in h] == ["dismissed", "confirmed"] and h[-1]["note"] == "both hold the master", h)

    # -- the registry of reviewers ------------------------------------------------------------------
    r = review("reviewers")
    check("no reviewer registered: says any name may decide", r.returncode == 0 and "any name" in r.stdout,
          r.stdout)
    r = review("reviewers", "add", "carol", "--tenant", "nosuch")
    check("a reviewer for a tenant that does not exist: refused", r.returncode == 1, r.returncode)
    r1 = review("reviewers", "add", "carol", "--tenant", "other")
    r2 = review("reviewers", "add", "alice")
    check("register carol (tenant other) and alice (all tenants)", r1.returncode == 0 and r2.returncode == 0,
          (r1.stderr, r2.stderr))
    regs = {x["name"]: x for x in jsonl(review("reviewers", "--json").stdout)}
    check("the registry lists them with their scope",
          regs.get("carol", {}).get("tenant") == "other" and regs.get("alice", {}).get("tenant") is None,
          regs)
    carol = {"EARMARK_REVIEWER": "carol"}
    got = jsonl(review("list", "--json", env=carol).stdout)
    check("a registered reviewer confined to a tenant lists only its matches, without --tenant",
          got and all(x["tenant"] == "other" for x in got), got)
    r = review("show", str(lava_id), env=carol)
    check("... cannot see another tenant's match", r.returncode == 1 and "no match" in r.stderr, r.stderr)
    r = review("dismiss", str(lava_id), "--note", "x", env=carol)
    check("... cannot decide on it", r.returncode == 1, r.returncode)
    r = review("list", "--tenant", "acme", env=carol)
    check("... cannot ask for another tenant", r.returncode == 1 and "works for tenant 'other'" in r.stderr,
          r.stderr)
    r = review("export", "--format", "json", env=carol)
    check("... exports only its tenant", all(x["tenant"] == "other" for x in jsonl(r.stdout)), r.stdout[:300])
    r = review("reviewers", "add", "mallory", env=carol)
    check("... cannot manage reviewers", r.returncode == 1, r.returncode)
    r = review("confirm", str(lava_id), "--note", "x", env={"EARMARK_REVIEWER": "dave"})
    check("once the registry is used, an unregistered name cannot decide",
          r.returncode == 1 and "not a registered reviewer" in r.stderr, r.stderr)
    r = review("reviewers", "disable", "alice")
    r2 = review("dismiss", str(lava_id), "--note", "x", env=alice)
    check("a disabled reviewer cannot decide", r.returncode == 0 and r2.returncode == 1 and "disabled" in r2.stderr,
          (r.stderr, r2.stderr))
    h = json.loads(review("show", str(lava_id), "--json").stdout)["history"]
    check("... and the history keeps the name", [x["reviewer"] for x in h] == ["alice"], h)
finally:
    cleanup()

print("review_test: %d failed" % failures())
sys.exit(1 if failures() else 0)
