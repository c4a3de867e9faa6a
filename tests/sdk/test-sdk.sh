#!/bin/sh
# SPDX-License-Identifier: MIT
#
# The plugin SDK works as installed: installs the build into a scratch
# DESTDIR, builds examples/plugin out of tree with nothing but
# `pkg-config latch-plugin` resolving into that DESTDIR, checks that the
# plugin exports only latch_plugin_entry, and loads it into the built latchd:
# a listed user authenticates (and carries the plugin's claim), another is
# refused, and a bad stack line is reported by --check-config with the
# plugin's own message. It also checks that docs/PLUGINS.md quotes the
# example's code verbatim.
#
# usage: test-sdk.sh BUILDDIR SRCDIR LATCHD LATCHCTL PERMIT_SO
# Exits 0 (pass), 1 (fail) or 77 (skipped: a tool is missing).

set -eu

if [ $# -ne 5 ]; then
        echo "usage: $0 BUILDDIR SRCDIR LATCHD LATCHCTL PERMIT_SO" >&2
        exit 1
fi
builddir=$1
srcdir=$2
latchd=$3
latchctl=$4
permit=$5

for tool in meson make cc nm pkg-config; do
        if ! command -v "$tool" >/dev/null 2>&1; then
                echo "SKIP: $tool is not installed"
                exit 77
        fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/latch-sdk.XXXXXX")
daemon_pid=
cleanup() {
        if [ -n "$daemon_pid" ]; then
                kill "$daemon_pid" 2>/dev/null || true
                wait "$daemon_pid" 2>/dev/null || true
        fi
        rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
        echo "FAIL: $*" >&2
        if [ -f "$tmp/latchd.log" ]; then
                echo "--- latchd log:" >&2
                cat "$tmp/latchd.log" >&2
        fi
        exit 1
}

# 0. docs/PLUGINS.md quotes the example verbatim: the code readers copy is
# the code this test builds.
extract() { # FILE NAME: the fenced block after the line "<!-- NAME: ..."
        awk -v marker="<!-- $2:" '
                index($0, marker) == 1 { found = 1; next }
                found == 1 && /^```/ { found = 2; next }
                found == 2 && /^```$/ { exit }
                found == 2 { print }' "$1"
}
for f in allowlist.c askcode.c Makefile; do
        extract "$srcdir/docs/PLUGINS.md" "examples/plugin/$f" >"$tmp/quoted-$f"
        [ -s "$tmp/quoted-$f" ] || fail "docs/PLUGINS.md does not quote examples/plugin/$f"
        diff -u "$srcdir/examples/plugin/$f" "$tmp/quoted-$f" >&2 ||
                fail "docs/PLUGINS.md quotes an outdated examples/plugin/$f"
done

# 1. Install into a scratch root. --no-rebuild: meson test has built
# everything already, and a build from inside a test would race it.
root=$tmp/root
if ! meson install -C "$builddir" --destdir "$root" --no-rebuild --quiet >"$tmp/install.log" 2>&1; then
        cat "$tmp/install.log" >&2
        fail "meson install --destdir failed (a file that 'could not be found' belongs to a target missing from sdk_deps in tests/sdk/meson.build)"
fi
pc=$(find "$root" -path '*/pkgconfig/latch-plugin.pc' | head -n 1)
[ -n "$pc" ] || fail "latch-plugin.pc was not installed"
[ -n "$(find "$root" -path '*/include/latch/plugin.h')" ] || fail "<latch/plugin.h> was not installed"

# 1b. What an admin finds installed beside the programs: the examples
# under $datadir/doc/latch/examples, the bash completion in
# bash-completion's folder under the prefix, a man page per program.
examples=$(find "$root" -type d -path '*/share/doc/latch/examples' | head -n 1)
[ -n "$examples" ] || fail "the examples were not installed under \$datadir/doc/latch/examples"
for f in latchd.conf http.conf grafana-latch.json services/file-users services/system-users \
        services/password-totp services/optional-totp nginx/latch-upstream.conf nginx/latch-server.conf \
        nginx/site.conf; do
        [ -s "$examples/$f" ] || fail "examples/$f was not installed in $examples"
        cmp -s "$srcdir/examples/$f" "$examples/$f" || fail "the installed examples/$f differs from the source"
done
[ -n "$(find "$root" -path '*/share/bash-completion/completions/latchctl')" ] ||
        fail "the bash completion of latchctl was not installed"
if command -v scdoc >/dev/null 2>&1; then
        for page in man1/latchctl.1 man8/latchd.8 man8/latch-http.8 man3/liblatch.3 man3/latch-plugin.3 \
                man5/latchd.conf.5 man5/latch.services.5; do
                [ -n "$(find "$root" -path "*/share/man/$page")" ] || fail "man page $page was not installed"
        done
fi

# 2. pkg-config sees only the scratch root: PKG_CONFIG_LIBDIR replaces the
# system's search path, and the sysroot prefixes every path it prints.
PKG_CONFIG_LIBDIR=$(dirname "$pc")
PKG_CONFIG_SYSROOT_DIR=$root
export PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR
unset PKG_CONFIG_PATH
flags=$(pkg-config --cflags --libs latch-plugin) || fail "pkg-config latch-plugin failed"
case " $flags " in
*" -I$root/"*) ;;
*) fail "pkg-config --cflags latch-plugin does not point into the DESTDIR: '$flags'" ;;
esac
plugindir=$(pkg-config --variable=plugindir latch-plugin)
case "$plugindir" in
"$root"/*/latch/plugins) ;;
*) fail "unexpected plugindir '$plugindir'" ;;
esac
[ -f "$plugindir/permit.so" ] || fail "the shipped plugins are not in plugindir ($plugindir)"

# 3. Build a copy of the example out of tree, warnings as errors.
example=$tmp/example
cp -R "$srcdir/examples/plugin" "$example"
rm -f "$example/allowlist.so"
make -C "$example" CFLAGS="-O2 -Wall -Wextra -Werror" >"$tmp/make.log" 2>&1 || {
        cat "$tmp/make.log" >&2
        fail "make failed"
}
so=$example/allowlist.so
[ -f "$so" ] || fail "make did not produce allowlist.so"

# 4. Exactly one exported symbol.
exports=$(nm -D --defined-only "$so" | awk '{ print $NF }' | sort)
[ "$exports" = "latch_plugin_entry" ] || fail "allowlist.so exports more than latch_plugin_entry: $exports"

# 5. make install puts it where the SDK says plugins go.
make -C "$example" install >>"$tmp/make.log" 2>&1 || fail "make install failed"
[ -f "$plugindir/allowlist.so" ] || fail "make install did not install into $plugindir"

# 6. Load it into the built latchd.
mkdir -p "$tmp/services" "$tmp/state"
chmod 700 "$tmp/state"
sock=$tmp/latchd.sock
cat >"$tmp/latchd.conf" <<EOF
[daemon]
socket = $sock
state_dir = state
services_dir = services
plugin_dir = $(dirname "$permit")
jwks_file = jwks.json
workers = 1
EOF
cat >"$tmp/services/sdk" <<EOF
# permit takes any password; the allowlist decides who may log in.
auth     required  $permit
auth     optional  $so users=alice,bob
account  required  $so users=alice,bob role=sdk-tester
EOF

# A bad argument is refused at load, with the plugin's own message.
mkdir -p "$tmp/bad/services"
sed "s|^services_dir = .*|services_dir = $tmp/bad/services|" "$tmp/latchd.conf" >"$tmp/bad/latchd.conf"
printf 'account required %s user=alice\n' "$so" >"$tmp/bad/services/sdk"
if "$latchd" --config "$tmp/bad/latchd.conf" --check-config >"$tmp/bad/out" 2>&1; then
        fail "--check-config accepted 'user=alice'"
fi
grep -q "sdk:1: .*unknown argument 'user=alice'" "$tmp/bad/out" ||
        fail "--check-config did not report the plugin's message: $(cat "$tmp/bad/out")"

# The installed example latchd.conf and the example stacks whose plugins
# ship (the totp ones need the totp plugin) pass --check-config, with the
# installed plugins and a users file of our own.
mkdir -p "$tmp/ex/services" "$tmp/ex/state"
chmod 700 "$tmp/ex/state"
cp "$examples/latchd.conf" "$tmp/ex/latchd.conf"
mkdir -p "$tmp/ex/latchd.conf.d"
# pam runs in-process here: the installed latch-worker lies in the DESTDIR,
# not where latchd would start it.
printf '[daemon]\nsocket = %s/ex/latchd.sock\nstate_dir = state\nservices_dir = services\nplugin_dir = %s\njwks_file = jwks.json\n[plugin.pam]\nisolate = no\n' \
        "$tmp" "$plugindir" >"$tmp/ex/latchd.conf.d/paths.conf"
: >"$tmp/ex/users"
for s in file-users system-users; do
        sed -e "s|/etc/latch/users|$tmp/ex/users|" -e "s|/var/lib/latch/users/site|$tmp/ex/users|" "$examples/services/$s" >"$tmp/ex/services/$s"
done
"$latchd" --config "$tmp/ex/latchd.conf" --check-config >"$tmp/ex/check.log" 2>&1 || {
        cat "$tmp/ex/check.log" >&2
        fail "--check-config refused the installed examples"
}

"$latchd" --config "$tmp/latchd.conf" --check-config >"$tmp/check.log" 2>&1 || {
        cat "$tmp/check.log" >&2
        fail "--check-config refused the good setup"
}

# LATCHD_WRAPPER (e.g. valgrind, from the valgrind-e2e test setup) runs
# latchd under a tool, as tests/e2e/harness.py does; word-split on purpose.
# shellcheck disable=SC2086
(cd "$tmp" && exec env -u NOTIFY_SOCKET -u LISTEN_FDS -u LISTEN_PID \
        ${LATCHD_WRAPPER:-} "$latchd" --config "$tmp/latchd.conf" --socket "$sock") >"$tmp/latchd.log" 2>&1 &
daemon_pid=$!

ctl() {
        "$latchctl" --socket "$sock" "$@"
}

tries=0
until ctl hello >/dev/null 2>&1; do
        tries=$((tries + 1))
        [ "$tries" -lt 600 ] || fail "latchd did not answer on $sock"
        kill -0 "$daemon_pid" 2>/dev/null || fail "latchd exited"
        sleep 0.1
done

# A listed user gets in, with the plugin's claim.
out=$(echo "any password" | ctl --json authenticate sdk alice) || fail "alice was refused: $out"
echo "$out" | grep -q '"roles": *\["sdk-tester"\]' || fail "alice lacks the roles claim: $out"

# Anyone else is refused: latchctl exits 1 (refused), and the plugin logged why.
set +e
out=$(echo "any password" | ctl --json authenticate sdk mallory)
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "mallory: latchctl exited $rc, not 1: $out"
echo "$out" | grep -q '"error": *"denied"' || fail "mallory: not denied: $out"
grep -q "allowlist (service 'sdk', user 'mallory'): not on the allowlist" "$tmp/latchd.log" ||
        fail "the plugin's log line is missing"

kill "$daemon_pid"
wait "$daemon_pid" || fail "latchd did not stop cleanly"
daemon_pid=

echo "PASS: the example plugin builds from the installed SDK and loads into latchd"
