"""tests/cli/hostile_text_test.py -- text from outside, shown by the CLIs:
a private PostgreSQL cluster, a real recording indexed from a manifest
whose title, artist and external id carry terminal controls, an upload over
real HTTP to `earmark serve` whose client_ref carries more, a decision whose
reviewer and note do too, and file names that are not UTF-8.

Run by tests/cli/hostile_text.sh.  Environment: EARMARK_BIN.  Checks:

  - review show, review list, catalog ls and catalog show write no byte a
    terminal acts on (C0 controls but the line ends, DEL, C1 controls, the
    bidirectional overrides), and so no forged line;
  - review export --format csv neutralises every text cell that a
    spreadsheet would take for a formula (= + - @, tab, CR first);
  - every --json line is valid UTF-8 JSON, also for file names that are
    not UTF-8 (earmark fingerprint --json, earmark match --json).
"""
import csv
import http.client
import io
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import EM, MUSIC, check, failures, scratch, sox  # noqa: E402

tmp, ENV = scratch("earmark-hostile-")
server = None

# what an attacker writes: clear the screen, set the window title, a CSI by
# its C1 code, a right-to-left override, and a carriage return and a newline
# that start a forged line
ESC = "\x1b[2J\x1b]0;owned\x07"
FORGED = "\rmatch 1  confirmed  by admin\n  2024-01-01  pending -> confirmed  by admin"
TITLE = ESC + "Snow\u009b31m\u202eyenom" + FORGED
ARTIST = "=HYPERLINK(\"http://evil.example/\",\"click\")"
REF = "+cmd|' /C calc'!A0\x1b]0;ref\x07" + FORGED
REVIEWER = "@eve\x1b[8m"
NOTE = "-2+3" + FORGED


def run(*args, env=None, raw=False):
    e = dict(ENV)
    e.update(env or {})
    r = subprocess.run([EM] + list(args), capture_output=True, env=e, stdin=subprocess.DEVNULL)
    if not raw:
        r.stdout = r.stdout.decode("utf-8", "replace")
        r.stderr = r.stderr.decode("utf-8", "replace")
    return r


def controls(text):
    """The characters of text (bar the line ends) that a terminal acts on."""
    return [c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f
            or 0x202a <= ord(c) <= 0x202e or 0x2066 <= ord(c) <= 0x2069]


def cleanup():
    if server and server.poll() is None:
        server.kill()
    run("db", "stop")
    shutil.rmtree(tmp, ignore_errors=True)


try:
    assert run("db", "start").returncode == 0, "db start"
    assert run("db", "migrate").returncode == 0, "db migrate"

    # -- a catalog from a manifest with hostile text ----------------------------------
    song = os.path.join(tmp, "Snowy.ogg")
    shutil.copy(MUSIC + "/Snowy.ogg", song)
    manifest = os.path.join(tmp, "m.csv")
    with open(manifest, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["path", "external_id", "title", "artist"])
        w.writerow(["Snowy.ogg", "-ISRC\t1", TITLE, ARTIST])
    r = run("index", "--quiet", "--tenant", "acme", "--manifest", manifest)
    check("index the manifest with hostile text", r.returncode == 0, r.stderr)
    key = run("keys", "create", "--tenant", "acme", "--name", "t").stdout.strip()

    clip = os.path.join(tmp, "clip.wav")
    sox(song, clip, "trim", "30", "10")
    port_file = os.path.join(tmp, "port")
    log = open(os.path.join(tmp, "serve.log"), "w")
    server = subprocess.Popen([EM, "serve", "--port", "0", "--port-file", port_file,
                               "--workers", "1"], env=ENV, stderr=log)
    for _ in range(400):
        if os.path.exists(port_file) and os.path.getsize(port_file):
            break
        time.sleep(0.05)
    port = int(open(port_file).read())
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("POST", "/v1/matches?client_ref=" + urllib.parse.quote(REF, safe=""),
              body=open(clip, "rb").read(),
              headers={"Content-Type": "audio/wav", "Authorization": "Bearer " + key})
    resp = c.getresponse()
    doc = json.loads(resp.read())
    c.close()
    server.terminate()
    server.wait(timeout=30)
    check("the upload with a hostile client_ref matches", resp.status == 200 and doc["matches"],
          (resp.status, doc))
    r = run("review", "list", "--json")
    rows = [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
    mid = str(rows[0]["id"]) if rows else "0"
    check("the match is stored with the client_ref as sent",
          rows and rows[0]["client_ref"] == REF, rows[:1])
    r = run("review", "confirm", mid, "--note", NOTE, env={"EARMARK_REVIEWER": REVIEWER})
    check("a decision by a hostile reviewer with a hostile note", r.returncode == 0, r.stderr)

    # -- terminal output ---------------------------------------------------------------
    tid = str(rows[0]["track_id"]) if rows else "0"
    for args in (("review", "show", mid), ("review", "list"), ("catalog", "ls"),
                 ("catalog", "show", tid), ("review", "stats")):
        r = run(*args)
        bad = controls(r.stdout)
        check("%s: no control reaches the terminal" % " ".join(args),
              r.returncode == 0 and not bad, (r.returncode, bad[:8], r.stderr[-200:]))
    r = run("review", "show", mid)
    hist = [x for x in r.stdout.splitlines() if x[:3] == "  2" and "->" in x]
    check("review show: one history line, no forged one", len(hist) == 1, hist)
    check("review show: the hostile text is shown escaped",
          "\\x1b]0;ref\\x07" in r.stdout and "\\u202e" in r.stdout and "\\u009b" in r.stdout
          and "\\r" in r.stdout and "\\n" in r.stdout, r.stdout)
    r = run("catalog", "ls")
    check("catalog ls: one line a track", len(r.stdout.splitlines()) == 2, r.stdout)

    # -- CSV export ----------------------------------------------------------------------
    r = run("review", "export", "--format", "csv")
    table = list(csv.DictReader(io.StringIO(r.stdout)))
    row = table[0] if table else {}
    check("review export --format csv: parses, one row", r.returncode == 0 and len(table) == 1,
          (r.returncode, r.stdout[:300]))
    formula = {k: v for k, v in row.items() if v and v[0] in "=+-@\t\r"}
    check("no CSV cell starts like a formula", not formula, formula)
    check("the cells that did are kept, behind a quote",
          row.get("artist") == "'" + ARTIST and row.get("client_ref") == "'" + REF
          and row.get("note") == "'" + NOTE and row.get("decided_by") == "'" + REVIEWER
          and row.get("external_id") == "'-ISRC\t1", row)
    check("numbers are left as they are",
          row.get("pitch_semitones", "") == "" or row["pitch_semitones"].lstrip("-")[:1].isdigit(),
          row.get("pitch_semitones"))

    # -- JSON with file names that are not UTF-8 ----------------------------------------------
    odd = os.path.join(tmp, "odd").encode() + b"/\xffname\xe9.wav"
    os.makedirs(os.path.join(tmp, "odd"))
    shutil.copy(clip, odd)
    for args in ((b"fingerprint", b"--json", odd), (b"match", b"--json", b"--ref", odd, odd)):
        r = run(*args, raw=True)
        try:
            docs = [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
            ok, why = r.returncode == 0 and len(docs) >= 1, r.stderr[-300:]
        except ValueError as e:
            ok, why = False, "%s: %r" % (e, r.stdout[:200])
        check("%s: valid UTF-8 JSON for a file name that is not" % args[0].decode(), ok, why)
        if ok:
            name = docs[0].get("file", docs[0].get("query", ""))
            check("%s: the name's bad bytes are shown as \\xNN" % args[0].decode(),
                  name.endswith("/\\xffname\\xe9.wav"), docs[0].keys())
    for args in (("review", "list", "--json"), ("review", "show", mid, "--json"),
                 ("review", "export", "--format", "json"), ("catalog", "ls", "--json"),
                 ("catalog", "show", tid, "--json"), ("review", "stats", "--json")):
        r = run(*args, raw=True)
        try:
            docs = [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
            ok, why = r.returncode == 0 and docs, r.stderr[-200:]
        except ValueError as e:
            ok, why = False, e
        check("%s: every line is JSON" % " ".join(args), ok, why)
finally:
    cleanup()

print("hostile_text_test.py: %d failed" % failures())
sys.exit(1 if failures() else 0)
