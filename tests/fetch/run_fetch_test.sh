#!/bin/sh
# Tests cmake/fetch_quickdraw.cmake without the internet: serves small
# generated .npy files named like Google's ("smiley face.npy") from a local
# HTTP server on 127.0.0.1 (a free port picked by the kernel), runs the
# script against it and checks names, contents and failure behaviour.
#
# usage: run_fetch_test.sh CMAKE_COMMAND SCRIPT WORKDIR
# Needs python3 (for http.server). Every step has a bounded timeout.
set -u
CMAKE=$1
SCRIPT=$2
WORK=$3
PY=${PYTHON3:-python3}

fail() { echo "FAIL: $*" >&2; exit 1; }
have_timeout=0
command -v timeout >/dev/null 2>&1 && have_timeout=1
run_bounded() { # seconds command...
    secs=$1; shift
    if [ "$have_timeout" = 1 ]; then timeout "$secs" "$@"; else "$@"; fi
}

command -v "$PY" >/dev/null 2>&1 || { echo "SKIP: python3 not found"; exit 77; }

rm -rf "$WORK"
mkdir -p "$WORK/srv" "$WORK/dest" || fail "cannot create $WORK"
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
}
trap cleanup EXIT INT TERM

# the local requests must not go to a proxy
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost

# ---- ten small files, uint8 (N, 784) with N = 3 + index, distinct contents
CATS="airplane;book;cat;circle;clock;crown;dog;rainbow;smiley face;star"
run_bounded 30 "$PY" - "$WORK/srv" "$CATS" <<'EOF' || fail "cannot generate the files"
import os, sys
out, cats = sys.argv[1], sys.argv[2].split(";")
for i, name in enumerate(cats):
    rows = 3 + i
    d = "{'descr': '|u1', 'fortran_order': False, 'shape': (%d, 784), }" % rows
    pad = (64 - (10 + len(d) + 1) % 64) % 64
    hdr = (d + " " * pad + "\n").encode("latin1")
    data = bytes(((r * 784 + k) * (i + 7)) % 256 for r in range(rows) for k in range(784))
    with open(os.path.join(out, name + ".npy"), "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + len(hdr).to_bytes(2, "little") + hdr + data)
EOF
[ -f "$WORK/srv/smiley face.npy" ] || fail "generated file missing"
printf 'this is not a numpy file\n' > "$WORK/srv/fake.npy"

# ---- local server on a free port (port 0: the kernel picks one)
"$PY" -u -m http.server 0 --bind 127.0.0.1 --directory "$WORK/srv" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
PORT=
i=0
while [ $i -lt 100 ]; do # up to 10 s
    PORT=$(sed -n 's/.*port \([0-9][0-9]*\).*/\1/p' "$WORK/server.log" | head -n 1)
    [ -n "$PORT" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || fail "the HTTP server exited: $(cat "$WORK/server.log")"
    sleep 0.1
    i=$((i + 1))
done
[ -n "$PORT" ] || fail "the HTTP server did not start: $(cat "$WORK/server.log")"
BASE="http://127.0.0.1:$PORT"
echo "server: $BASE (pid $SERVER_PID)"

# ---- 1. all ten categories
run_bounded 120 "$CMAKE" -DDEST="$WORK/dest" -DBASE_URL="$BASE/" -DTIMEOUT=20 -P "$SCRIPT" \
    || fail "the fetch script failed"
n=0
old_ifs=$IFS
IFS=';'
for cat in $CATS; do
    IFS=$old_ifs
    file=$(printf '%s' "$cat" | tr ' ' '_').npy
    [ -f "$WORK/dest/$file" ] || fail "$file did not arrive"
    cmp -s "$WORK/dest/$file" "$WORK/srv/$cat.npy" || fail "$file differs from the served file"
    n=$((n + 1))
done
IFS=$old_ifs
[ "$n" = 10 ] || fail "expected 10 categories, checked $n"
count=$(ls "$WORK/dest" | wc -l)
[ "$count" -eq 10 ] || fail "expected exactly 10 files in dest, found $count: $(ls -a "$WORK/dest")"
[ -z "$(ls -A "$WORK/dest" | grep '^\.')" ] || fail "temporary files left behind"
[ -f "$WORK/dest/smiley_face.npy" ] || fail "smiley_face.npy missing"

# ---- 2. the right hash passes, a wrong one fails and leaves no file
mkdir -p "$WORK/dest2"
good=$("$CMAKE" -E sha256sum "$WORK/srv/cat.npy" | cut -d' ' -f1)
run_bounded 60 "$CMAKE" -DDEST="$WORK/dest2" -DBASE_URL="$BASE" -DCATEGORIES=cat \
    -DHASHES="cat=SHA256=$good" -P "$SCRIPT" >"$WORK/good.log" 2>&1 \
    || fail "a correct hash was refused: $(cat "$WORK/good.log")"
grep -q verified "$WORK/good.log" || fail "the hash was not checked: $(cat "$WORK/good.log")"
cmp -s "$WORK/dest2/cat.npy" "$WORK/srv/cat.npy" || fail "cat.npy differs"

wrong=0000000000000000000000000000000000000000000000000000000000000000
if run_bounded 60 "$CMAKE" -DDEST="$WORK/dest2" -DBASE_URL="$BASE" -DCATEGORIES="smiley face" \
    -DHASHES="smiley face=SHA256=$wrong" -P "$SCRIPT" >"$WORK/wrong.log" 2>&1; then
    fail "a wrong hash was accepted"
fi
grep -q "hash mismatch" "$WORK/wrong.log" || fail "no mismatch message: $(cat "$WORK/wrong.log")"
[ ! -e "$WORK/dest2/smiley_face.npy" ] || fail "a file was left after a hash mismatch"
[ -z "$(ls -A "$WORK/dest2" | grep '^\.')" ] || fail "a temporary file was left after a mismatch"

# the same through a sha256sum-style hashes file
printf '%s  smiley_face.npy\n' "$wrong" > "$WORK/SUMS"
if run_bounded 60 "$CMAKE" -DDEST="$WORK/dest2" -DBASE_URL="$BASE" -DCATEGORIES=smiley_face \
    -DHASHES_FILE="$WORK/SUMS" -P "$SCRIPT" >"$WORK/wrong2.log" 2>&1; then
    fail "a wrong hash from HASHES_FILE was accepted"
fi
[ ! -e "$WORK/dest2/smiley_face.npy" ] || fail "a file was left after a HASHES_FILE mismatch"

# ---- 3. a missing file (404) and an answer that is not .npy fail, leave nothing
if run_bounded 60 "$CMAKE" -DDEST="$WORK/dest2" -DBASE_URL="$BASE" -DCATEGORIES=unicorn \
    -P "$SCRIPT" >"$WORK/404.log" 2>&1; then
    fail "a 404 was accepted"
fi
[ ! -e "$WORK/dest2/unicorn.npy" ] || fail "a file was left after a 404"
if run_bounded 60 "$CMAKE" -DDEST="$WORK/dest2" -DBASE_URL="$BASE" -DCATEGORIES=fake \
    -P "$SCRIPT" >"$WORK/html.log" 2>&1; then
    fail "a file that is not .npy was accepted"
fi
[ -z "$(ls -A "$WORK/dest2" | grep -v '^cat.npy$')" ] || fail "leftovers: $(ls -A "$WORK/dest2")"

# ---- 4. a second run keeps existing files (no hash known) without downloading
kill "$SERVER_PID" 2>/dev/null
wait "$SERVER_PID" 2>/dev/null
SERVER_PID=
run_bounded 60 "$CMAKE" -DDEST="$WORK/dest" -DBASE_URL="$BASE" -DTIMEOUT=5 -P "$SCRIPT" \
    >"$WORK/again.log" 2>&1 || fail "a rerun with all files present failed: $(cat "$WORK/again.log")"

echo "fetch test: all checks passed"
rm -rf "$WORK"
exit 0
