#!/bin/sh
# SPDX-License-Identifier: MIT
# Checks the units as systemd reads them:
#   - systemd-analyze verify on copies of the configured units whose
#     ExecStart= points at the programs in the build tree instead of their
#     installed place (verify refuses a missing program, so the check is
#     real), and on a broken copy, which must fail;
#   - systemd-analyze security --offline: latchd.service's exposure must be
#     at most MAX (1.5); the worker's is printed;
#   - latchd.service may write the state folder users/ (file-plugin password
#     changes);
#   - the sysusers.d and tmpfiles.d snippets applied to a scratch root.
# Usage: test-units.sh UNITDIR SYSUSERS TMPFILES MAX
# Environment: LATCHD_INSTALLED, LATCHD_BUILT: latchd's installed and built
# paths; WORKER_INSTALLED, WORKER_BUILT: latch-worker's (WORKER_BUILT empty
# while latch-worker is not built: then its unit is not verified).
set -eu

unitdir=$1
sysusers=$2
tmpfiles=$3
max=$4

command -v systemd-analyze >/dev/null || { echo "systemd-analyze not found: skipped"; exit 77; }

tmp=$(mktemp -d /tmp/latch-units-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cp "$unitdir"/latchd.socket "$unitdir"/latch-pam-worker.socket "$tmp"/
sed "s#^ExecStart=$LATCHD_INSTALLED\( \|\$\)#ExecStart=$LATCHD_BUILT\1#" \
        "$unitdir"/latchd.service > "$tmp"/latchd.service
sed "s#^ExecStart=$WORKER_INSTALLED #ExecStart=${WORKER_BUILT:-$WORKER_INSTALLED} #" \
        "$unitdir"/latch-pam-worker@.service > "$tmp"/latch-pam-worker@.service
cd "$tmp"
grep -q "^ExecStart=$LATCHD_BUILT\( \|\$\)" latchd.service || {
        echo "FAIL: latchd.service's ExecStart= is not $LATCHD_INSTALLED"; exit 1; }

fail=0
# A refusal to start (exit 1: bad config, damaged or unsafe store) must not
# be restarted in a loop; a store that fails while running (exit 74) must be.
if grep -qx 'RestartPreventExitStatus=1' latchd.service && grep -qx 'Restart=on-failure' latchd.service; then
        echo "ok: latchd.service restarts on failure but not after exit 1"
else
        echo "FAIL: latchd.service must have Restart=on-failure and RestartPreventExitStatus=1"; fail=1
fi
# The file plugin replaces a user database by renaming a new file over it:
# under ProtectSystem=strict only the state folders can be written, so the
# folder for databases users change must be one of them.
if grep -qx 'StateDirectory=latch latch/users' latchd.service; then
        echo "ok: latchd.service may write the state folder users/ (password changes)"
else
        echo "FAIL: latchd.service must have StateDirectory=latch latch/users"; fail=1
fi
echo "# systemd-analyze verify"
units="latchd.socket latchd.service latch-pam-worker.socket"
if [ -n "${WORKER_BUILT:-}" ]; then
        units="$units latch-pam-worker@0.service"
else
        echo "note: latch-worker is not built yet: latch-pam-worker@.service not verified"
fi
for u in $units; do
        if out=$(systemd-analyze verify --man=no "$u" 2>&1) && [ -z "$out" ]; then
                echo "ok: $u"
        else
                echo "FAIL: $u"; echo "$out"; fail=1
        fi
done

# The same check on a copy with a typo and a missing program must fail:
# proof that the verify above can catch something.
mkdir broken
sed -e 's/^ProtectSystem=/ProtectSystme=/' -e 's|^ExecStart=.*|ExecStart=/nonexistent/latchd|' \
        latchd.service > broken/latchd.service
cp latchd.socket broken/
if (cd broken && systemd-analyze verify --man=no latchd.service >/dev/null 2>&1); then
        echo "FAIL: verify accepted a broken unit"; fail=1
else
        echo "ok: a broken copy is refused"
fi

echo "# systemd-analyze security --offline=true"
for u in latchd.service latch-pam-worker@.service; do
        systemd-analyze security --offline=true --no-pager "./$u" > "$u.security" 2>&1 || true
        grep -v '✓' "$u.security" || true
done
exposure=$(sed -n 's/.*Overall exposure level for latchd.service: \([0-9.]*\).*/\1/p' latchd.service.security)
worker=$(sed -n 's/.*Overall exposure level for latch-pam-worker@.*: \([0-9.]*\).*/\1/p' latch-pam-worker@.service.security)
echo "exposure: latchd.service $exposure (max $max), latch-pam-worker@.service $worker"
if [ -z "$exposure" ]; then
        echo "FAIL: no exposure level for latchd.service"; fail=1
elif ! awk -v e="$exposure" -v m="$max" 'BEGIN { exit !(e <= m) }'; then
        echo "FAIL: latchd.service exposure $exposure > $max"; fail=1
fi

echo "# sysusers.d and tmpfiles.d on a scratch root"
if [ "$(id -u)" != 0 ]; then
        echo "note: not root: sysusers.d and tmpfiles.d not applied"
else
        mkdir -p root/etc
        if systemd-sysusers --root="$tmp/root" "$sysusers" 2>&1 && grep -q '^latch:' root/etc/passwd &&
           grep -q '^latch:' root/etc/group; then
                echo "ok: sysusers makes user and group latch"
        else
                echo "FAIL: sysusers"; fail=1
        fi
        uid=$(awk -F: '$1 == "latch" { print $3 }' root/etc/passwd)
        if systemd-tmpfiles --root="$tmp/root" --create "$tmpfiles" 2>&1; then
                state=$(sed -n 's/^d \([^ ]*\) 0700 latch latch.*/\1/p' "$tmpfiles" | head -n 1)
                got=$(stat -c '%a %u' "root$state")
                if [ -n "$uid" ] && [ "$got" = "700 $uid" ]; then
                        echo "ok: tmpfiles makes $state 0700 latch"
                else
                        echo "FAIL: $state is '$got', expected '700 $uid'"; fail=1
                fi
                got=$(stat -c '%a %u' "root$state/users")
                if [ -n "$uid" ] && [ "$got" = "700 $uid" ]; then
                        echo "ok: tmpfiles makes $state/users 0700 latch"
                else
                        echo "FAIL: $state/users is '$got', expected '700 $uid'"; fail=1
                fi
        else
                echo "FAIL: tmpfiles"; fail=1
        fi
fi
exit $fail
