#!/bin/sh
# SPDX-License-Identifier: MIT
# Formats each man page with groff, all warnings on; any output fails.
# Usage: test-man.sh PAGE...
fail=0
for page in "$@"; do
        if [ ! -s "$page" ]; then
                echo "FAIL: $page is missing or empty"; fail=1; continue
        fi
        out=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$page" 2>&1)
        if [ $? -ne 0 ] || [ -n "$out" ]; then
                echo "FAIL: $page"; echo "$out"; fail=1
        else
                name=$(sed -n 's/^\.TH "\([^"]*\)" "\([^"]*\)".*/\1(\2)/p' "$page")
                echo "ok: $page ${name}"
        fi
done
exit $fail
