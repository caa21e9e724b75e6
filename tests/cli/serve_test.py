"""tests/cli/serve_test.py -- `earmark serve` over real HTTP, against a real
private PostgreSQL cluster and real recordings.

Run by tests/cli/serve.sh.  Environment: EARMARK_BIN (the built earmark).
Checks: authentication, tenant isolation, the three upload forms, the
fields docs/openapi.yaml names, no-match answers, limits at the headers
(413 before the body is read), bad bodies (truncated, empty, random bytes,
wrong Content-Type), rate limiting, concurrent uploads, a database stopped
and restarted under the running server (503, then recovery), metrics, a
track's copies within the key's tenant, and graceful shutdown on SIGTERM.
"""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import EM, MUSIC, check, failures, index_two_tenants, scratch, sox  # noqa: E402




def run(*args, **kw):
    return subprocess.run([EM] + list(args), capture_output=True, text=True, env=ENV, **kw)


tmp, ENV = scratch("earmark-serve-")
servers = []


def cleanup():
    for p in servers:
        if p.poll() is None:
            p.kill()
    run("db", "stop")
    shutil.rmtree(tmp, ignore_errors=True)


def start_server(*extra):
    port_file = os.path.join(tmp, "port%d" % len(servers))
    log = open(os.path.join(tmp, "serve%d.log" % len(servers)), "w")
    p = subprocess.Popen([EM, "serve", "--port", "0", "--port-file", port_file, "--workers", "2"]
                         + list(extra), env=ENV, stderr=log)
    servers.append(p)
    for _ in range(200):
        if os.path.exists(port_file):
            return p, int(open(port_file).read())
        time.sleep(0.05)
    raise SystemExit("the server did not start")


def request(port, method, path, body=None, headers=None, timeout=60):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
    except (BrokenPipeError, ConnectionResetError):
        # the server answered early (at the headers) and closed: the answer
        # is still there to read
        pass
    r = c.getresponse()
    data = r.read()
    c.close()
    try:
        doc = json.loads(data) if data else None
    except ValueError:
        doc = None
    return r.status, dict(r.getheaders()), doc, data



# -- the spec: required properties of each schema ------------------------------
SPEC = os.environ.get("EARMARK_OPENAPI") or os.path.join(os.path.dirname(__file__), "../../docs/openapi.yaml")
spec = yaml.safe_load(open(SPEC))


def resolve(schema):
    while "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def missing_fields(doc, schema, where="$"):
    """Names of required properties the spec lists that doc lacks (recursively)."""
    schema = resolve(schema)
    out = []
    if "allOf" in schema:
        for s in schema["allOf"]:
            out += missing_fields(doc, s, where)
        return out
    if schema.get("type") == "object" or "properties" in schema:
        if not isinstance(doc, dict):
            return [where + " (not an object)"]
        for k in schema.get("required", []):
            if k not in doc:
                out.append(where + "." + k)
        for k, sub in schema.get("properties", {}).items():
            if k in doc and doc[k] is not None:
                out += missing_fields(doc[k], sub, where + "." + k)
    elif schema.get("type") == "array" and "items" in schema and isinstance(doc, list):
        for i, e in enumerate(doc):
            out += missing_fields(e, schema["items"], "%s[%d]" % (where, i))
    return out


def response_schema(path, method, status, ctype="application/json"):
    op = spec["paths"][path][method]
    resp = op["responses"][str(status)]
    if "$ref" in resp:
        resp = spec["components"]["responses"][resp["$ref"].split("/")[-1]]
    content = resp["content"]
    return content.get(ctype) or content.get("application/problem+json") or next(iter(content.values()))


def spec_check(name, doc, path, method, status):
    sch = response_schema(path, method, status)["schema"]
    miss = missing_fields(doc, sch)
    check(name + " carries every field the spec requires", not miss, miss)


try:
    # -- catalog: tenant acme (3 recordings), tenant other (1) -----------------
    assert run("db", "start").returncode == 0, "db start"
    assert run("db", "migrate").returncode == 0, "db migrate"
    index_two_tenants(run)
    key_a = run("keys", "create", "--tenant", "acme", "--name", "test").stdout.strip()
    key_admin = run("keys", "create", "--tenant", "acme", "--name", "ops", "--role", "admin").stdout.strip()
    key_b = run("keys", "create", "--tenant", "other", "--name", "test").stdout.strip()
    check("keys are made", key_a.startswith("em_") and key_b.startswith("em_"), (key_a, key_b))
    revoked = run("keys", "create", "--tenant", "acme", "--name", "gone").stdout.strip()
    run("keys", "revoke", revoked[:11])
    A = {"Authorization": "Bearer " + key_a}
    B = {"Authorization": "Bearer " + key_b}

    clip = os.path.join(tmp, "clip.wav")
    sox(MUSIC + "/Lava.ogg", clip, "trim", "40", "10", "speed", "1.05")
    neg = os.path.join(tmp, "neg.wav")
    sox(MUSIC + "/Penguin_Party.ogg", neg, "trim", "20", "10")
    wav = open(clip, "rb").read()

    srv, port = start_server("--max-upload-mb", "4", "--rate", "1000", "--burst", "1000")

    # -- health ------------------------------------------------------------------
    st, _, doc, _ = request(port, "GET", "/healthz")
    check("/healthz answers 200", st == 200)
    st, _, doc, _ = request(port, "GET", "/readyz")
    check("/readyz answers 200 with the database up", st == 200, doc)

    # -- authentication ------------------------------------------------------------
    aud = {"Content-Type": "audio/wav"}
    st, h, doc, _ = request(port, "POST", "/v1/matches", wav, aud)
    check("no key: 401 unauthorized", st == 401 and doc and doc.get("code") == "unauthorized", (st, doc))
    check("401 says how to authenticate", h.get("WWW-Authenticate", "").startswith("Bearer"), h)
    st, _, doc, _ = request(port, "POST", "/v1/matches", wav, dict(aud, Authorization="Bearer nope"))
    check("a malformed key: 401", st == 401, st)
    st, _, doc, _ = request(port, "POST", "/v1/matches", wav,
                            dict(aud, Authorization="Bearer em_" + "A" * 43))
    check("an unknown key: 401", st == 401, st)
    st, _, doc, _ = request(port, "POST", "/v1/matches", wav, dict(aud, Authorization="Bearer " + revoked))
    check("a revoked key: 401", st == 401 and "revoked" in (doc or {}).get("detail", ""), (st, doc))
    st, _, doc, _ = request(port, "GET", "/v1/nothing", None, A)
    check("an unknown route: 404 problem", st == 404 and doc and doc.get("code") == "not_found", (st, doc))
    spec_check("a problem", doc, "/v1/matches", "post", 401)

    # -- a match, three ways ----------------------------------------------------------
    st, _, doc, _ = request(port, "POST", "/v1/matches?client_ref=clip-1&max_results=5", wav, dict(aud, **A))
    check("POST audio: 200", st == 200, (st, doc))
    lava_id = None
    if st == 200:
        m = doc["matches"]
        check("the clip is found: Lava.ogg, 5% faster",
              len(m) >= 1 and m[0]["speed"] > 1.03 and m[0]["speed"] < 1.07, m)
        check("client_ref is echoed", doc.get("client_ref") == "clip-1", doc.get("client_ref"))
        check("the offset is right", m and abs(m[0]["ref_start"] - 40.0 - m[0]["query_start"] * m[0]["speed"]) < 1.0, m)
        check("the upload is flagged", doc["flag"] in ("likely_infringement", "possible_reuse"), doc["flag"])
        check("a claim's confidence: chance alignments as strong are rarer than 1 in 100",
              m and 0.99 <= m[0]["confidence"] <= 1.0, m and m[0]["confidence"])
        spec_check("POST /v1/matches", doc, "/v1/matches", "post", 200)
        lava_id = m[0]["track_id"] if m else None
        upload_a = doc["upload_id"]
        posted_a = doc
    boundary = "earmarkboundary7MA4YWxkTrZu0gW"
    mp = (("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"clip.wav\"\r\n"
           "Content-Type: audio/wav\r\n\r\n" % boundary).encode() + wav + ("\r\n--%s--\r\n" % boundary).encode())
    st, _, doc, _ = request(port, "POST", "/v1/matches", mp,
                            dict(A, **{"Content-Type": "multipart/form-data; boundary=" + boundary}))
    check("POST multipart/form-data: the same match",
          st == 200 and doc["matches"] and doc["matches"][0]["track_id"] == lava_id, (st, doc))
    prints = run("fingerprint", "--json", clip).stdout
    st, _, doc, _ = request(port, "POST", "/v1/matches", prints.encode(),
                            dict(A, **{"Content-Type": "application/json"}))
    check("POST precomputed prints: the same match",
          st == 200 and doc["matches"] and doc["matches"][0]["track_id"] == lava_id, (st, doc))
    bad_version = prints.replace('"params_version":', '"params_version":9', 1)
    st, _, doc, _ = request(port, "POST", "/v1/matches", bad_version.encode(),
                            dict(A, **{"Content-Type": "application/json"}))
    check("prints of other parameters: 422", st == 422 and doc.get("code") == "params_mismatch", (st, doc))

    # -- no match ------------------------------------------------------------------------
    st, _, doc, _ = request(port, "POST", "/v1/matches", open(neg, "rb").read(), dict(aud, **A))
    check("music not in the catalog: 200, no matches, flag none",
          st == 200 and doc["matches"] == [] and doc["flag"] == "none", (st, doc))

    # -- reading back, and tenant isolation ------------------------------------------------
    st, _, doc, _ = request(port, "GET", "/v1/matches/" + upload_a, None, A)
    check("GET /v1/matches/{id}: the stored result", st == 200 and doc["upload_id"] == upload_a, (st, doc))
    if st == 200:
        spec_check("GET /v1/matches/{id}", doc, "/v1/matches/{id}", "get", 200)
        got, was = doc["matches"], posted_a["matches"]
        check("... the same matches, created_at and decode time as the response",
              [(x["track_id"], x["score"], x["segments"]) for x in got] ==
              [(x["track_id"], x["score"], x["segments"]) for x in was] and
              doc["created_at"] == posted_a["created_at"] and doc["decode_ms"] == posted_a["decode_ms"],
              (doc, posted_a))
        check("... its processing_ms is the time up to storing it, the response's until stored",
              0 < doc["processing_ms"] <= posted_a["processing_ms"],
              (doc["processing_ms"], posted_a["processing_ms"]))
    st, _, doc, _ = request(port, "GET", "/v1/matches/" + upload_a, None, B)
    check("another tenant's key cannot read the match", st == 404, st)
    st, _, doc, _ = request(port, "GET", "/v1/tracks/%s" % lava_id, None, A)
    check("GET /v1/tracks/{id}", st == 200 and doc["track_id"] == lava_id, (st, doc))
    if st == 200:
        spec_check("GET /v1/tracks/{id}", doc, "/v1/tracks/{id}", "get", 200)
    st, _, doc, _ = request(port, "GET", "/v1/tracks/%s" % lava_id, None, B)
    check("another tenant's key cannot read the track", st == 404, st)
    st, _, doc, _ = request(port, "POST", "/v1/matches", wav, dict(aud, **B))
    check("another tenant's clip is matched against its own catalog only",
          st == 200 and doc["matches"] == [], (st, doc))
    st, _, doc, _ = request(port, "GET", "/v1/catalog/stats", None, A)
    check("GET /v1/catalog/stats counts acme's tracks", st == 200 and doc["tracks"] == 3, (st, doc))
    if st == 200:
        spec_check("GET /v1/catalog/stats", doc, "/v1/catalog/stats", "get", 200)
        check("a client key does not see the store figures", "store" not in doc, doc)
    st, _, doc, _ = request(port, "GET", "/v1/catalog/stats", None, {"Authorization": "Bearer " + key_admin})
    check("an admin key sees the store figures", st == 200 and "store" in doc, doc)

    # -- bad bodies ---------------------------------------------------------------------------
    st, _, doc, _ = request(port, "POST", "/v1/matches", wav[:2000], dict(aud, **A))
    check("a truncated WAV: 4xx", 400 <= st < 500, (st, doc))
    st, _, doc, _ = request(port, "POST", "/v1/matches", b"", dict(aud, **A))
    check("an empty body: 400 empty_body", st == 400 and doc.get("code") == "empty_body", (st, doc))
    st, _, doc, _ = request(port, "POST", "/v1/matches", os.urandom(50000), dict(aud, **A))
    check("random bytes: 415 undecodable_audio", st == 415 and doc.get("code") == "undecodable_audio", (st, doc))
    st, _, doc, _ = request(port, "POST", "/v1/matches", wav, dict(A, **{"Content-Type": "text/plain"}))
    check("a wrong Content-Type: 415 unsupported_media_type",
          st == 415 and doc.get("code") == "unsupported_media_type", (st, doc))
    st, _, doc, _ = request(port, "POST", "/v1/matches?min_score=abc", wav, dict(aud, **A))
    check("a bad parameter: 400 bad_parameter", st == 400 and doc.get("code") == "bad_parameter", (st, doc))
    st, _, doc, _ = request(port, "POST", "/v1/matches", b"{not json", dict(A, **{"Content-Type": "application/json"}))
    check("malformed prints JSON: 400", st == 400, (st, doc))

    # -- 413 at the headers: a 100 MB Content-Length, and no body sent at all -----------------
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(("POST /v1/matches HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
               "Content-Type: audio/wav\r\nContent-Length: 100000000\r\n\r\n" % key_a).encode())
    head = s.recv(4096).decode(errors="replace")
    s.close()
    check("an oversize upload gets 413 before its body is sent", head.startswith("HTTP/1.1 413"), head[:80])
    big = os.urandom(5 * 1024 * 1024)
    try:
        st, _, doc, _ = request(port, "POST", "/v1/matches", big, dict(aud, **A))
        check("a 5 MB body over a 4 MB limit: 413", st == 413, st)
    except (ConnectionError, OSError) as e:
        check("a 5 MB body over a 4 MB limit: refused", True, e)

    # -- concurrent uploads ------------------------------------------------------------------
    results = []

    def one():
        try:
            st, _, doc, _ = request(port, "POST", "/v1/matches", wav, dict(aud, **A))
            results.append(st == 200 and doc["matches"] and doc["matches"][0]["track_id"] == lava_id)
        except Exception as e:  # noqa: BLE001 -- any failure counts
            results.append(e)
    ts = [threading.Thread(target=one) for _ in range(16)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check("16 concurrent uploads all match", results.count(True) == 16, results)

    # -- the database stopped under the running server, then back -----------------------------
    run("db", "stop")
    st, h, doc, _ = request(port, "POST", "/v1/matches", wav, dict(aud, **A))
    check("database down: 503 database_unavailable",
          st == 503 and doc.get("code") == "database_unavailable", (st, doc))
    check("503 says when to retry", "Retry-After" in h, h)
    st, _, doc, _ = request(port, "GET", "/readyz")
    check("database down: /readyz 503", st == 503, st)
    st, _, _, _ = request(port, "GET", "/healthz")
    check("database down: /healthz still 200", st == 200, st)
    run("db", "start")
    ok = False
    for _ in range(40):
        st, _, doc, _ = request(port, "POST", "/v1/matches", wav, dict(aud, **A))
        if st == 200:
            ok = True
            break
        time.sleep(0.25)
    check("database back: matches again without a restart", ok and doc["matches"], (st, doc))
    # every worker had a connection the restart broke: none may fail a request for it
    sts = [request(port, "POST", "/v1/matches", wav, dict(aud, **A))[0] for _ in range(6)]
    check("database back: no worker answers 503 for its old connection", sts == [200] * 6, sts)
    st, _, _, _ = request(port, "GET", "/readyz")
    check("database back: /readyz 200", st == 200, st)

    # -- metrics ---------------------------------------------------------------------------------
    st, h, _, raw = request(port, "GET", "/metrics")
    text = raw.decode()
    check("/metrics is Prometheus text", st == 200 and h.get("Content-Type", "").startswith("text/plain"), h)
    for name in ("earmark_requests_total", "earmark_request_duration_seconds_bucket",
                 "earmark_matches_total", "earmark_decode_failures_total", "earmark_database_errors_total",
                 "earmark_requests_in_flight", "earmark_lookups_narrowed_total"):
        check("/metrics has " + name, name in text)
    check("/metrics counts the 503s", 'route="post_matches",code="503"' in text)
    # the same clip again and again: after the first, its rows come from the row cache
    def metric(text, line):
        for l in text.splitlines():
            if l.startswith(line + " "):
                return float(l.split()[-1])
        return -1.0
    hits0 = metric(text, 'earmark_store_cache_lookups_total{result="hit"}')
    misses0 = metric(text, 'earmark_store_cache_lookups_total{result="miss"}')
    sts = [request(port, "POST", "/v1/matches", wav, dict(aud, **A))[0] for _ in range(3)]
    text = request(port, "GET", "/metrics")[3].decode()
    hits1 = metric(text, 'earmark_store_cache_lookups_total{result="hit"}')
    misses1 = metric(text, 'earmark_store_cache_lookups_total{result="miss"}')
    check("repeated clips are served from the row cache", sts == [200] * 3 and hits0 >= 0 and
          hits1 > hits0 and misses1 == misses0 and metric(text, "earmark_store_cache_bytes") > 0,
          (sts, hits0, hits1, misses0, misses1))

    # -- rate limit (its own server: 1 request a second, burst 2) ---------------------------------
    srv2, port2 = start_server("--rate", "1", "--burst", "2", "--quiet")
    codes = [request(port2, "GET", "/v1/catalog/stats", None, A)[0] for _ in range(4)]
    st, h, doc, _ = request(port2, "GET", "/v1/catalog/stats", None, A)
    check("over the rate: 429 with Retry-After", st == 429 and "Retry-After" in h and 429 in codes, (codes, st, h))
    srv2.send_signal(signal.SIGTERM)
    srv2.wait(10)

    # -- a lookup in two parts (its own server: a first part of 1 000 hits) -----------------------
    srv4, port4 = start_server("--first-hits", "1000", "--rate", "1000", "--burst", "1000", "--quiet")
    st4, _, doc4, _ = request(port4, "POST", "/v1/matches?max_results=5", wav, dict(aud, **A))
    keep = ("track_id", "score", "prints", "query_start", "query_end", "ref_start", "ref_end",
            "speed", "tempo", "pitch_semitones", "flag", "segments")
    def brief(doc):
        return [{k: m.get(k) for k in keep} for m in doc["matches"]]
    check("a lookup in two parts: the matches of one part",
          st4 == 200 and posted_a and brief(doc4) == brief(posted_a), (st4, doc4, posted_a))
    text4 = request(port4, "GET", "/metrics")[3].decode()
    check("... its second part fetched for the clip's recording only",
          metric(text4, "earmark_lookups_narrowed_total") == 1,
          metric(text4, "earmark_lookups_narrowed_total"))
    st4, _, doc4, _ = request(port4, "POST", "/v1/matches", open(neg, "rb").read(), dict(aud, **A))
    text4 = request(port4, "GET", "/metrics")[3].decode()
    check("a clip not in the catalog: no match, not narrowed",
          st4 == 200 and doc4["matches"] == [] and
          metric(text4, "earmark_lookups_narrowed_total") == 1, (st4, doc4))
    srv4.send_signal(signal.SIGTERM)
    srv4.wait(10)

    # -- the test against chance is the server's setting ---------------------------------------------
    srv5, port5 = start_server("--max-chance", "1e-300", "--rate", "1000", "--burst", "1000", "--quiet")
    st5, _, doc5, _ = request(port5, "POST", "/v1/matches", wav, dict(aud, **A))
    check("--max-chance 1e-300: the clip's alignment is not that rare by chance, nothing claimed",
          st5 == 200 and doc5["matches"] == [] and doc5["flag"] == "none", (st5, doc5))
    srv5.send_signal(signal.SIGTERM)
    srv5.wait(10)

    # -- a trickling body is cut off at the request deadline ----------------------------------------
    srv3, port3 = start_server("--request-timeout", "2", "--idle-timeout", "30")
    sk = socket.create_connection(("127.0.0.1", port3))
    sk.sendall(("POST /v1/matches HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n"
                "Content-Type: audio/wav\r\nContent-Length: 100000\r\n\r\n" % key_a).encode())
    sk.settimeout(0.25)
    t0, closed_at = time.time(), None
    while time.time() - t0 < 15 and closed_at is None:
        try:
            sk.sendall(b"x" * 10)
            if sk.recv(4096) == b"":
                closed_at = time.time() - t0
        except socket.timeout:
            pass
        except OSError:
            closed_at = time.time() - t0
    sk.close()
    check("a body trickling past --request-timeout 2: the connection is closed at the deadline",
          closed_at is not None and 1.9 <= closed_at < 4, closed_at)
    srv3.send_signal(signal.SIGTERM)
    srv3.wait(10)
    log3 = open(os.path.join(tmp, "serve%d.log" % (len(servers) - 1))).read()
    check("... and logged as a 408", " 408 " in log3 or "status=408" in log3 or '"status":408' in log3,
          log3[-300:])

    # -- copies: the recording indexed again (FLAC) in acme and in other ----------------------------
    lava_flac = os.path.join(tmp, "Lava_copy.flac")
    subprocess.run(["sox", "-V1", MUSIC + "/Lava.ogg", lava_flac], check=True)
    r1 = run("index", "--quiet", "--tenant", "acme", lava_flac)
    r2 = run("index", "--quiet", "--tenant", "other", lava_flac)
    check("a copy of Lava indexed in acme and in other", r1.returncode == 0 and r2.returncode == 0,
          (r1.stderr, r2.stderr))
    st, _, doc, _ = request(port, "POST", "/v1/matches", wav, dict(aud, **A))
    m = doc["matches"] if st == 200 else []
    ids = sorted([m[0]["track_id"]] + [c["track_id"] for c in m[0]["copies"]]) if m else []
    check("a recording held twice by acme: one match listing the other copy",
          st == 200 and len(m) == 1 and len(m[0]["copies"]) == 1 and lava_id in ids, (st, doc))
    if m and m[0]["copies"]:
        c = m[0]["copies"][0]
        check("... the copy at the same place and speed, with its metadata",
              abs(c["ref_start"] - m[0]["ref_start"]) < 0.1 and abs(c["speed"] - m[0]["speed"]) < 0.005
              and c["owner"] == "acme" and c["segments"], c)
        spec_check("POST /v1/matches with copies", doc, "/v1/matches", "post", 200)
        st, _, got, _ = request(port, "GET", "/v1/matches/" + doc["upload_id"], None, A)
        check("GET /v1/matches/{id}: the copies, each with its review status",
              st == 200 and [x["track_id"] for x in got["matches"][0]["copies"]] == [c["track_id"]]
              and got["matches"][0]["copies"][0]["review_status"] == "pending", (st, got))
        rows = run("db", "psql", "-qAt", "-c",
                   "SELECT track_id, rank, copy_index FROM matches m JOIN uploads u ON u.id = m.upload_id "
                   "WHERE u.public_id = '%s' ORDER BY copy_index" % doc["upload_id"]).stdout.split()
        check("... stored as two matches of one rank, copy 0 and copy 1",
              rows == ["%d|1|0" % m[0]["track_id"], "%d|1|1" % c["track_id"]], rows)
    st, _, doc, _ = request(port, "POST", "/v1/matches", wav, dict(aud, **B))
    m = doc["matches"] if st == 200 else []
    check("other's key: its own copy, and none of acme's",
          st == 200 and len(m) == 1 and m[0]["owner"] == "other" and m[0]["copies"] == [], (st, doc))

    # -- a track's copies: the tenant's own only, a deleted one's hidden ---------------------------
    orig = "/usr/share/scummvm/drascula/audio/track25.ogg"
    excerpt, copy = os.path.join(tmp, "excerpt.wav"), os.path.join(tmp, "copy.flac")
    subprocess.run(["sox", orig, excerpt, "trim", "5", "40"], check=True, capture_output=True)
    subprocess.run(["sox", orig, copy], check=True, capture_output=True)
    r = run("index", "--quiet", "--tenant", "acme", orig, excerpt)
    r2 = run("index", "--quiet", "--tenant", "other", copy)
    check("index a track, its excerpt (acme) and a copy (other)", r.returncode == 0 and r2.returncode == 0,
          r.stderr + r2.stderr)

    def track_id(source):
        return int(run("db", "psql", "-qAt", "-c", "SELECT id FROM tracks WHERE source = '%s'" % source).stdout)

    o_id, e_id, c_id = track_id(orig), track_id(excerpt), track_id(copy)
    st, _, doc, _ = request(port, "GET", "/v1/tracks/%d" % o_id, None, A)
    got = [(x["track_id"], x["relation"]) for x in (doc or {}).get("copies", [])]
    check("GET /v1/tracks/{id} lists the tenant's copy, not the other tenant's",
          st == 200 and got == [(e_id, "contains")], (st, doc))
    if st == 200:
        spec_check("GET /v1/tracks/{id} with copies", doc, "/v1/tracks/{id}", "get", 200)
        x = doc["copies"][0] if doc["copies"] else {}
        check("... where the excerpt lies and how much of it aligns",
              abs(x.get("offset", -1) - 5.0) < 0.2 and x.get("coverage", 0) > 0.9, x)
    st, _, doc, _ = request(port, "GET", "/v1/tracks/%d" % c_id, None, B)
    check("the other tenant's copy shows none of acme's tracks",
          st == 200 and doc["copies"] == [], (st, doc))
    run("catalog", "rm", str(e_id))
    st, _, doc, _ = request(port, "GET", "/v1/tracks/%d" % o_id, None, A)
    check("a deleted copy is no longer listed", st == 200 and doc["copies"] == [], (st, doc))

    # -- answers given at the headers reach a client that sends its whole body first --------------
    blob = os.urandom(3000000)
    got, broken = [], 0
    for i in range(20):
        hc = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            hc.request("POST", "/v1/matches", body=blob,
                       headers={"Content-Type": "audio/wav"} if i % 2 else
                       {"Content-Type": "audio/wav", "Authorization": "Bearer nope"})
            resp = hc.getresponse()
            got.append((resp.status, json.loads(resp.read() or b"null")))
        except (BrokenPipeError, ConnectionResetError):
            broken += 1
        hc.close()
    check("a 401 for a 3 MB body: every client gets its status and problem, none a broken pipe",
          broken == 0 and len(got) == 20 and all(st == 401 and d and d["code"] == "unauthorized" for st, d in got),
          (broken, got[:3]))

    # -- a multipart body without its closing boundary -------------------------------------------
    cut = mp[:len(mp) - len(("\r\n--%s--\r\n" % boundary).encode())]
    st, _, doc, _ = request(port, "POST", "/v1/matches", cut,
                            dict(A, **{"Content-Type": "multipart/form-data; boundary=" + boundary}))
    check("multipart without its closing boundary: 400 bad_multipart",
          st == 400 and doc and doc["code"] == "bad_multipart", (st, doc))

    # -- text that is not UTF-8: refused or not found before any work ---------------------------------
    st, _, doc, _ = request(port, "POST", "/v1/matches?client_ref=%ff", wav, dict(aud, **A))
    check("client_ref that is not UTF-8: 400 bad_parameter", st == 400 and doc and doc["code"] == "bad_parameter",
          (st, doc))

    def raw_get(path):
        sk = socket.create_connection(("127.0.0.1", port), timeout=10)
        sk.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                   b"Authorization: Bearer " + key_a.encode() + b"\r\n\r\n")
        got = b""
        while True:
            chunk = sk.recv(65536)
            if not chunk:
                break
            got += chunk
        sk.close()
        head, _, body = got.partition(b"\r\n\r\n")
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        return head.split(b" ")[1] if head else b"", doc

    for path in (b"/v1/matches/\xff\xfe", b"/v1/tracks/\xff", b"/v1/no\xffthing"):
        code, doc = raw_get(path)
        check("GET %r: 404 with a problem body" % path, code == b"404" and doc and doc.get("code") == "not_found",
              (code, doc))

    # -- request smuggling: two Content-Lengths that disagree ----------------------------------------
    inner = ("GET /v1/catalog/stats HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n\r\n" % key_a).encode()
    body = b'{"a":1}' + inner
    sk = socket.create_connection(("127.0.0.1", port), timeout=10)
    sk.sendall(("POST /v1/matches HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n"
                "Content-Type: application/json\r\nContent-Length: 7\r\nContent-Length: %d\r\n\r\n"
                % (key_a, len(body))).encode() + body)
    got = b""
    try:
        while True:
            chunk = sk.recv(65536)
            if not chunk:
                break
            got += chunk
    except OSError:
        pass
    sk.close()
    check("two different Content-Lengths: one answer, 400, and the connection closed",
          got.count(b"HTTP/1.1 ") == 1 and got.startswith(b"HTTP/1.1 400") and b"bad_request" in got,
          got[:300])

    # -- a port in use: a second server refuses to start, unless it asks to share ------------------
    second = subprocess.Popen([EM, "serve", "--port", str(port), "--quiet"], env=ENV,
                              stderr=subprocess.PIPE, text=True)
    try:
        err2 = second.communicate(timeout=20)[1]
    except subprocess.TimeoutExpired:
        second.kill()
        err2 = "still running after 20 s: " + second.communicate()[1]
    check("a second earmark serve on a port in use refuses to start (exit 1, says so)",
          second.returncode == 1 and "in use" in err2, (second.returncode, err2[-300:]))

    # -- SIGHUP: the same drain as SIGTERM, logged -------------------------------------------------
    srv6, port6 = start_server("--quiet")
    srv6.send_signal(signal.SIGHUP)
    rc6 = srv6.wait(30)
    log6 = open(os.path.join(tmp, "serve%d.log" % (len(servers) - 1))).read()
    check("SIGHUP: drains and exits 0, with a log line", rc6 == 0 and "SIGHUP" in log6, (rc6, log6[-300:]))

    # -- graceful shutdown: a request in flight completes, exit 0 -----------------------------------
    # the headers go first; the signal comes while the body is still on its way
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.putrequest("POST", "/v1/matches")
    for k, v in dict(aud, **A).items():
        c.putheader(k, v)
    c.putheader("Content-Length", str(len(wav)))
    c.endheaders()
    c.send(wav[:1000])
    time.sleep(0.2)
    srv.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    # during the grace a new connection is refused at once, not left waiting
    t0 = time.time()
    try:
        socket.create_connection(("127.0.0.1", port), timeout=3).close()
        refused = False
    except ConnectionRefusedError:
        refused = True
    except OSError:
        refused = False
    check("SIGTERM: during the grace new connections are refused at once",
          refused and time.time() - t0 < 1, (refused, time.time() - t0))
    c.send(wav[1000:])
    r = c.getresponse()
    st = r.status
    r.read()
    c.close()
    rc = srv.wait(30)
    check("SIGTERM: the request in flight was answered", st == 200, st)
    check("SIGTERM: exit 0", rc == 0, rc)
    try:
        request(port, "GET", "/healthz", timeout=2)
        check("SIGTERM: no new connections", False)
    except OSError:
        check("SIGTERM: no new connections", True)
finally:
    cleanup()

print("serve_test: %d failed" % failures())
sys.exit(1 if failures() else 0)
