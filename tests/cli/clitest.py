"""tests/cli/clitest.py -- what the Python end-to-end tests share: checks
that print "ok - ..." / "not ok - ...", a scratch folder whose var/ holds
the test's own private PostgreSQL cluster, and clips cut with sox."""
import os
import subprocess
import tempfile

EM = os.environ.get("EARMARK_BIN") or os.path.abspath("build/earmark")
MUSIC = "/usr/share/games/supertuxkart/data/music"
_failures = [0]


def check(name, cond, detail=""):
    if cond:
        print("ok - " + name)
    else:
        _failures[0] += 1
        print("not ok - " + name + (": " + str(detail) if detail else ""))


def failures():
    return _failures[0]


def scratch(prefix):
    """A new folder (readable by the cluster's unprivileged owner) and an
    environment whose earmark uses the private cluster in its var/ and
    nothing of the caller's database, tenant or reviewer settings."""
    tmp = tempfile.mkdtemp(prefix=prefix)
    os.chmod(tmp, 0o711)
    env = dict(os.environ)
    for k in ("EARMARK_DB", "PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE",
              "EARMARK_TENANT", "EARMARK_REVIEWER"):
        env.pop(k, None)
    env["EARMARK_VAR"] = os.path.join(tmp, "var")
    return tmp, env


def sox(src, dst, *effects):
    """src cut and changed by sox effects, as 16-bit 44.1 kHz stereo WAV."""
    subprocess.run(["sox", "-V1", src, "-r", "44100", "-b", "16", "-c", "2", dst] + list(effects),
                   check=True)


def index_two_tenants(run):
    """The catalog both end-to-end tests use: tenant acme with three
    recordings (Snowy, Lava, bay), tenant other with one (egypt).  `run`
    runs earmark with the test's environment."""
    acme = [MUSIC + "/Snowy.ogg", MUSIC + "/Lava.ogg", MUSIC + "/bay.ogg"]
    r = run("index", "--quiet", "--tenant", "acme", *acme)
    check("index acme's catalog", r.returncode == 0, r.stderr)
    r = run("index", "--quiet", "--tenant", "other", MUSIC + "/egypt.ogg")
    check("index other's catalog", r.returncode == 0, r.stderr)
