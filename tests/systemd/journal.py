# SPDX-License-Identifier: MIT
"""A stand-in for journald: a datagram socket at the journal's address that
collects what sd_journal_sendv() sends, decoded from the native protocol.

The native protocol (systemd's JOURNAL_NATIVE_PROTOCOL): one datagram per
record, a series of fields, each either `KEY=value\\n`, or, for a value that
holds a newline, `KEY\\n` + 64-bit little-endian length + value + `\\n`. A
record too large for a datagram comes as a sealed memfd passed with
SCM_RIGHTS instead, holding the same bytes.
"""

import array
import ctypes
import os
import socket
import struct

JOURNAL_DIR = "/run/systemd/journal"
JOURNAL_SOCKET = JOURNAL_DIR + "/socket"

CLONE_NEWNS = 0x00020000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18


def parse_native(data):
    """Returns the record as a list of (key, value bytes), in order."""
    fields = []
    i = 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            key, value = line.split(b"=", 1)
            i = nl + 1
        else:
            key = line
            (n,) = struct.unpack("<Q", data[nl + 1:nl + 9])
            value = data[nl + 9:nl + 9 + n]
            if data[nl + 9 + n:nl + 10 + n] != b"\n":
                raise ValueError("binary field not ended by a newline")
            i = nl + 10 + n
        if not key or not all(c.isupper() or c.isdigit() or c == "_" for c in key.decode()):
            raise ValueError(f"bad field name {key!r}")
        fields.append((key.decode(), value))
    return fields


def private_run_systemd():
    """Gives this process its own mount namespace with an empty tmpfs on
    /run/systemd, so that the journal socket of this test is seen by this
    process and its children only. False when that is not possible."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        return False
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return False
    os.makedirs("/run/systemd", exist_ok=True)
    return libc.mount(b"tmpfs", b"/run/systemd", b"tmpfs", 0, b"mode=0755") == 0


def journal_in_use():
    """Whether something answers at the journal's socket."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.connect(JOURNAL_SOCKET)
        return True
    except OSError:
        return False
    finally:
        s.close()


class FakeJournal:
    def __init__(self):
        self.sock = None
        self.made_dir = False
        self.records = []

    def bind(self):
        if not os.path.isdir(JOURNAL_DIR):
            os.makedirs(JOURNAL_DIR)
            self.made_dir = True
        if os.path.exists(JOURNAL_SOCKET):
            os.unlink(JOURNAL_SOCKET)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(JOURNAL_SOCKET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        return self

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None
            os.unlink(JOURNAL_SOCKET)
            if self.made_dir:
                os.rmdir(JOURNAL_DIR)

    def drain(self, timeout=0.5):
        """Reads every datagram waiting (and those arriving within timeout)."""
        self.sock.settimeout(timeout)
        while True:
            try:
                data, anc, _flags, _addr = self.sock.recvmsg(1 << 20, socket.CMSG_SPACE(4 * 4))
            except (socket.timeout, BlockingIOError):
                break
            for level, type_, payload in anc:
                if level == socket.SOL_SOCKET and type_ == socket.SCM_RIGHTS:
                    fds = array.array("i")
                    fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
                    for fd in fds:
                        with os.fdopen(fd, "rb") as f:
                            data += f.read()
            self.records.append((data, parse_native(data)))
        return self.records
