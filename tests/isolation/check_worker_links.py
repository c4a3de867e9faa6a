#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""latch-worker runs plugins (pam_unix among them) as root: it links the
plugin host's core and nothing of latchd's store or isolation code.

    check_worker_links.py LATCH_WORKER
"""

import subprocess
import sys


def main():
    worker = sys.argv[1]
    dynamic = subprocess.run(['readelf', '-d', '-W', worker], check=True, capture_output=True,
                             text=True).stdout
    needed = [line.split('[', 1)[1].rstrip(']') for line in dynamic.splitlines() if '(NEEDED)' in line]
    symbols = subprocess.run(['nm', '-a', worker], check=True, capture_output=True, text=True).stdout
    names = {line.split()[-1] for line in symbols.splitlines() if line.strip()}

    bad = [lib for lib in needed if lib.startswith('liblmdb')]
    # One symbol for each part that must stay out: LMDB itself, latchd's
    # store, the plugins' key-value store on it, and isolation.
    bad += sorted(names & {'mdb_env_open', 'mdb_txn_begin', 'store_kv_get', 'store_open',
                           'plugin_host_new', 'plugin_host_configure'})
    print('NEEDED:', ' '.join(needed))
    if bad:
        print('latch-worker links what it must not:', ' '.join(bad))
        return 1
    if 'plugin_line_open' not in names:
        print('latch-worker has no plugin host at all: the check looks at the wrong file')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
