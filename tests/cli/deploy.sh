#!/bin/sh
# tests/cli/deploy.sh -- the files of deploy/ against the built program:
#
#   - every earmark command line in deploy/systemd/*.service and
#     deploy/container/* (ExecStart= lines, commented ones too; ENTRYPOINT,
#     CMD, RUN and HEALTHCHECK; compose entrypoint, command and healthcheck,
#     with the image's ENTRYPOINT where compose keeps it) names a command,
#     an action where the command takes one, and flags that `earmark ...
#     --help` lists;
#   - every EARMARK_* name in those files, and every variable assigned in
#     earmark.env.example (commented or not), is read by the C sources: it
#     is a string literal in a source file that calls getenv;
#   - the container's build stage copies every folder `make` compiles from,
#     installs the -dev package of every pkg-config module the Makefile
#     uses, and the runtime stage the package of every library the binary
#     links (both where dpkg and pkg-config are there to say);
#   - systemd-analyze verify accepts the units and says nothing about them
#     (skipped, saying so, without systemd-analyze);
#   - and the same checks fail on copies of deploy/ with a misspelled flag,
#     command, action or variable.
set -u
EM=${EARMARK_BIN:-$PWD/build/earmark}
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
tmp=$(mktemp -d /tmp/earmark-deploy-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM
fails=0
ok() { echo "ok - $1"; }
no() { echo "not ok - $1"; fails=$((fails + 1)); }
TAB=$(printf '\t')
SRC_DIRS="fingerprint match db store catalog keys server cli indexer review"

[ -x "$EM" ] || { no "the program is built ($EM)"; exit 1; }
python3 -c 'import yaml' 2>/dev/null || { no "python3 and python3-yaml are installed (scripts/deps)"; exit 1; }
COMMANDS=$("$EM" --help | sed -n '/^commands:/,$ s/^  \([a-z][a-z]*\)  .*/\1/p')
[ -n "$COMMANDS" ] || { no "earmark --help lists the commands"; exit 1; }

# The earmark command lines of a deploy folder: "file:line<TAB>arg<TAB>arg...",
# the arguments after the program's name.
invocations() {
    python3 - "$1" <<'EOF'
import glob, json, os, re, shlex, sys
import yaml

root = sys.argv[1]
found = []

def simple_commands(text):
    for part in re.split(r'&&|\|\||;|\|', text):
        argv = shlex.split(part)
        while argv and (argv[0] in ('exec', 'env') or re.match(r'^[A-Za-z_][A-Za-z0-9_]*=', argv[0])):
            argv = argv[1:]
        yield argv

def emit(where, argv):
    if argv and os.path.basename(str(argv[0])) == 'earmark':
        found.append((where, [str(a) for a in argv[1:]]))

def as_argv(value):
    return shlex.split(value) if isinstance(value, str) else list(value)

for path in sorted(glob.glob(os.path.join(root, 'systemd', '*.service'))):
    for n, line in enumerate(open(path), 1):
        m = re.match(r'^\s*#?\s*Exec[A-Za-z]*=(.*)$', line)
        if m and m.group(1).strip():
            for argv in simple_commands(m.group(1).strip().lstrip('-@:+!|')):
                emit('%s:%d' % (path, n), argv)

entrypoint, cmd = [], []
path = os.path.join(root, 'container', 'Containerfile')
lines, start, buf = [], 0, ''
for n, line in enumerate(open(path), 1):
    if not buf:
        start = n
        if line.lstrip().startswith('#'):
            continue
    buf += line.rstrip('\n')
    if buf.endswith('\\'):
        buf = buf[:-1] + ' '
        continue
    lines.append((start, buf))
    buf = ''
for n, text in lines:
    m = re.match(r'^\s*([A-Za-z]+)\s+(.*)$', text)
    if not m:
        continue
    op, body = m.group(1).upper(), m.group(2).strip()
    if op == 'HEALTHCHECK':
        m = re.search(r'\bCMD\s+(.*)$', body)
        if not m:
            continue
        op, body = 'CMD-CHECK', m.group(1).strip()
    if op not in ('ENTRYPOINT', 'CMD', 'RUN', 'CMD-CHECK'):
        continue
    where = '%s:%d' % (path, n)
    if body.startswith('['):
        argv = json.loads(body)
        emit(where, argv)
    else:
        argv = ['/bin/sh', '-c', body]
        for a in simple_commands(body):
            emit(where, a)
    if op == 'ENTRYPOINT':
        entrypoint, cmd = argv, []
    elif op == 'CMD':
        cmd = argv

path = os.path.join(root, 'container', 'compose.yaml')
doc = yaml.safe_load(open(path))
ours = set()
for name, svc in doc['services'].items():
    build = svc.get('build')
    if isinstance(build, dict) and build.get('dockerfile', '').endswith('Containerfile'):
        ours.add(svc.get('image', name))
for name, svc in doc['services'].items():
    where = '%s: service %s' % (path, name)
    image = svc.get('image', name if 'build' in svc else None)
    e = svc.get('entrypoint')
    c = svc.get('command')
    if image in ours:
        argv = (as_argv(e) if e is not None else entrypoint) + \
               (as_argv(c) if c is not None else (cmd if e is None else []))
    else:
        argv = (as_argv(e) if e is not None else []) + (as_argv(c) if c is not None else [])
    emit(where, argv)
    test = (svc.get('healthcheck') or {}).get('test')
    if isinstance(test, str):
        test = ['CMD-SHELL', test]
    if test and test[0] == 'CMD':
        emit(where + ' healthcheck', test[1:])
    elif test and test[0] == 'CMD-SHELL':
        for a in simple_commands(test[1]):
            emit(where + ' healthcheck', a)

for where, args in found:
    print('\t'.join([where.replace(root + '/', 'deploy/')] + args))
EOF
}

# earmark ARGS... as given at WHERE: the command, its action, its flags
check_invocation() {
    where=$1; shift
    if [ $# -eq 0 ]; then no "$where: earmark without a command"; return; fi
    cmd=$1; shift
    if ! printf '%s\n' "$COMMANDS" | grep -qx -- "$cmd"; then
        no "$where: 'earmark $cmd': earmark --help lists no such command"; return
    fi
    help=$("$EM" "$cmd" --help 2>&1)
    line="earmark $cmd"
    # a command whose usage starts with a word takes an action first
    if printf '%s\n' "$help" | head -1 | grep -q "^usage: earmark $cmd [a-z]"; then
        if [ $# -eq 0 ]; then no "$where: '$line' without an action"; return; fi
        action=$1; shift
        if ! printf '%s\n' "$help" | grep -qw -- "$action" ||
           ! help=$("$EM" "$cmd" "$action" --help 2>&1); then
            no "$where: '$line $action': earmark $cmd --help lists no such action"; return
        fi
        line="$line $action"
    fi
    bad=""
    for a in "$@"; do
        case "$a" in
        --*)
            flag=${a%%=*}
            printf '%s\n' "$help" | grep -q -- "$flag\([^a-z0-9-]\|$\)" || bad="$bad $flag"
            ;;
        esac
    done
    if [ -n "$bad" ]; then no "$where: '$line' has no option$bad ($line --help)"
    elif [ $# -gt 0 ]; then ok "$where: $line $*"
    else ok "$where: $line"; fi
}

# a variable is read when a C source that calls getenv names it as a literal
is_read() {
    # shellcheck disable=SC2086
    for f in $(cd "$ROOT" && grep -rlF --include='*.c' "\"$1\"" $SRC_DIRS); do
        grep -q 'getenv(' "$ROOT/$f" && return 0
    done
    return 1
}

check_variables() {
    d=$1
    names=$(cat "$d"/systemd/* "$d"/container/* | grep -o 'EARMARK_[A-Z0-9_]*' | sort -u)
    set_names=$(sed -n 's/^#\{0,1\}[[:space:]]*\([A-Z][A-Z0-9_]*\)=.*/\1/p' "$d/systemd/earmark.env.example" | sort -u)
    [ -n "$set_names" ] || no "earmark.env.example assigns variables"
    for v in $(printf '%s\n%s\n' "$names" "$set_names" | sort -u); do
        if is_read "$v"; then ok "variable $v is read by the program"
        else no "variable $v is not read by the program (no getenv of it in $SRC_DIRS)"; fi
    done
}

# What the image must hold, worked out once: the folders `make` compiles
# from, and where dpkg and pkg-config can say, "package what" lines for the
# -dev package of each pkg-config module of the Makefile and the package of
# each library the binary links.
MAKE_DIRS=$(make -n -B all BUILD="$tmp/b" 2>/dev/null | grep -o ' -c [^ ]*\.c' | sed 's/ -c //; s|/[^/]*$||' | sort -u)
[ -n "$MAKE_DIRS" ] || no "make -n lists what it compiles"
BUILD_PKGS="" RUN_PKGS=""
if command -v dpkg >/dev/null && command -v pkg-config >/dev/null; then
    # shellcheck disable=SC2013
    for m in $(sed -n 's/^\(PKGS\|DB_PKGS\) *:= *//p' Makefile); do
        p=$(dpkg -S "$(pkg-config --variable=pcfiledir "$m")/$m.pc" 2>/dev/null | cut -d: -f1)
        BUILD_PKGS="$BUILD_PKGS${p:-?} pkg-config:$m
"
    done
    for lib in $(objdump -p "$EM" | sed -n 's/^ *NEEDED *//p'); do
        # a sanitizer build (make asan) links these; the image is built without
        case $lib in libasan.so* | libubsan.so* | liblsan.so* | libtsan.so*) continue ;; esac
        path=$(ldd "$EM" | sed -n "s|^[[:space:]]*$lib => \([^ ]*\).*|\1|p")
        p=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | cut -d: -f1)
        [ -n "$p" ] || p=$(dpkg -S "$path" 2>/dev/null | cut -d: -f1)
        [ "$p" = libc6 ] || RUN_PKGS="$RUN_PKGS${p:-?} $lib
"
    done
fi

# in_stage STAGE-TEXT "package what" LABEL
in_stage() {
    set -- "$1" "${2%% *}" "${2#* }" "$3"
    if [ "$2" = "?" ]; then no "the Debian package of $3 is known"
    elif printf '%s\n' "$1" | grep -qw -- "$2"; then ok "the $4 stage installs $2 ($3)"
    else no "the $4 stage does not install $2 ($3)"; fi
}

check_container_build() {
    f=$1/container/Containerfile
    b=$(awk '/^FROM /{n++} n==1' "$f")
    r=$(awk '/^FROM /{n++} n==2' "$f")
    for dir in $MAKE_DIRS sql; do
        if printf '%s\n' "$b" | grep -q "^COPY $dir/ $dir/\$"; then ok "the build stage copies $dir/"
        else no "the build stage does not copy $dir/ (make compiles from it, or installs it)"; fi
    done
    printf '%s\n' "$b" | grep -q '^COPY Makefile ' || no "the build stage copies the Makefile"
    if [ -z "$BUILD_PKGS$RUN_PKGS" ]; then
        echo "ok - # skip: the image's packages (no dpkg or pkg-config here)"; return
    fi
    while IFS= read -r pw; do [ -z "$pw" ] || in_stage "$b" "$pw" build; done <<EOF
$BUILD_PKGS
EOF
    while IFS= read -r pw; do [ -z "$pw" ] || in_stage "$r" "$pw" runtime; done <<EOF
$RUN_PKGS
EOF
}

check_units() {
    d=$1
    if ! command -v systemd-analyze >/dev/null; then
        echo "ok - # skip: systemd-analyze verify (systemd-analyze is not installed)"; return
    fi
    # the units name the installed /usr/local/bin/earmark: verify copies that
    # name the built one
    u=$tmp/units
    rm -rf "$u" && mkdir "$u"
    for f in "$d"/systemd/*.service "$d"/systemd/*.timer; do
        sed "s|/usr/local/bin/earmark|$EM|g" "$f" >"$u/${f##*/}"
    done
    out=$(cd "$u" && systemd-analyze verify ./*.service ./*.timer 2>&1); rc=$?
    if [ $rc -eq 0 ] && [ -z "$out" ]; then ok "systemd-analyze verify accepts the units"
    else no "systemd-analyze verify (exit $rc): $out"; fi
}

check_deploy() {
    dep=$1
    invocations "$dep" >"$tmp/inv" || { no "the command lines of $dep can be read"; return; }
    [ -s "$tmp/inv" ] || no "$dep has earmark command lines"
    set -f
    while IFS= read -r l; do
        IFS=$TAB
        # shellcheck disable=SC2086
        set -- $l
        unset IFS
        check_invocation "$@"
    done <"$tmp/inv"
    set +f
    check_variables "$dep"
    check_container_build "$dep"
    check_units "$dep"
}

# -- the real files ------------------------------------------------------------
check_deploy deploy >"$tmp/real.out"
cat "$tmp/real.out"
grep '^not ok' "$tmp/real.out" >"$tmp/real.fail"
real_fails=$(grep -c . "$tmp/real.fail")

# -- misspelled copies must fail --------------------------------------------------
# mutant NAME FILE SED-EXPRESSION: the checks on a copy of deploy/ with FILE
# edited by sed find a failure that the real files do not have
mutant() {
    rm -rf "$tmp/d" && cp -r deploy "$tmp/d"
    sed -i "$3" "$tmp/d/$2"
    if cmp -s "deploy/$2" "$tmp/d/$2"; then no "mutant '$1': the edit applies"; return; fi
    (check_deploy "$tmp/d") >"$tmp/mutant.out" 2>&1
    sed "s|$tmp/d/|deploy/|g" "$tmp/mutant.out" | grep '^not ok' |
        grep -vxF -f "$tmp/real.fail" >"$tmp/mutant.fail"
    if [ -s "$tmp/mutant.fail" ]; then ok "mutant '$1' fails: $(sed -n '1s/^not ok - //p' "$tmp/mutant.fail")"
    else no "mutant '$1' passes the checks"; fi
}
fails=0
mutant "flag typo in a unit" systemd/earmark-index.service 's/--failures /--failure /'
mutant "flag typo in a commented unit line" systemd/earmark-index.service 's/^#ExecStart=\(.*\)--manifest /#ExecStart=\1--manifests /'
mutant "command typo in the image" container/Containerfile 's/"earmark", "serve"/"earmark", "serv"/'
mutant "action typo in compose" container/compose.yaml 's/"db", "migrate"/"db", "migrat"/'
mutant "flag typo in compose" container/compose.yaml 's/"--wait"/"--wait-seconds"/'
mutant "variable typo in the environment file" systemd/earmark.env.example 's/^#EARMARK_CACHE_MB=/#EARMARK_CACHEMB=/'
mutant "variable typo in compose" container/compose.yaml 's/EARMARK_GRACE:/EARMARK_GRACE_S:/'
mutant "a source folder not copied" container/Containerfile '/^COPY indexer\//d'
mutant "a runtime library not installed" container/Containerfile 's/ libjansson4 / /'
if command -v systemd-analyze >/dev/null; then
    mutant "unknown unit setting" systemd/earmark.service 's/^NoNewPrivileges=/NoNewPrivilege=/'
fi

echo
echo "deploy: $real_fails failed on deploy/; $fails failed among the misspelled copies"
[ "$real_fails" -eq 0 ] && [ "$fails" -eq 0 ]
