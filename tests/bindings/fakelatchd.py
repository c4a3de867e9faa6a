# SPDX-License-Identifier: MIT
"""A stand-in for latchd that speaks the framing but follows a script, for
what the real daemon cannot be made to do on demand: ask a challenge (no
shipped plugin converses yet without a terminal), drop a connection after
reading a request, never answer, or answer junk.

    python3 fakelatchd.py SOCKET MODE     (prints "ready" when listening)

Modes:
  challenge   login/authenticate answer a challenge (a secret prompt and an
              info line); respond with the right conversation and answer
              "123456" completes it, anything else is invalid_conversation.
  drop-first  the first connection is closed after its first request has
              been read; later connections answer every request with
              {"ok": true, "op": OP, "attempt": N}.
  silent      reads requests and never answers.
  junk        answers every request with a frame that is not JSON.
  echo        answers every request with {"ok": true, "request": REQUEST}.
"""

import json
import os
import socket
import struct
import sys
import threading

CONV = "c0nversation-id-1111111111111111111"


def read_frame(c):
    hdr = b""
    while len(hdr) < 4:
        b = c.recv(4 - len(hdr))
        if not b:
            return None
        hdr += b
    (n,) = struct.unpack(">I", hdr)
    data = b""
    while len(data) < n:
        b = c.recv(n - len(data))
        if not b:
            return None
        data += b
    return json.loads(data)


def send(c, obj):
    data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    c.sendall(struct.pack(">I", len(data)) + data)


def main():
    path, mode = sys.argv[1], sys.argv[2]
    if os.path.exists(path):
        os.unlink(path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(64)
    print("ready", flush=True)
    lock = threading.Lock()
    state = {"conns": 0, "attempt": 0}

    def serve(c, index):
        with c:
            while True:
                req = read_frame(c)
                if req is None:
                    return
                op = req.get("op")
                rid = req.get("id")
                if mode == "challenge":
                    if op in ("login", "authenticate"):
                        send(c, {"id": rid, "ok": False, "error": "challenge", "message": "more input needed",
                                 "conversation": CONV, "expires_at": 4102444800,
                                 "prompts": [{"style": "info", "message": "second factor"},
                                             {"style": "secret", "message": "Verification code:"}]})
                    elif op == "respond":
                        if req.get("conversation") == CONV and req.get("answers") == ["123456"]:
                            send(c, {"id": rid, "ok": True, "session": "S" * 44, "handle": "h", "user": "alice",
                                     "service": "demo", "expires_at": 4102444800, "idle_expires_at": 4102444800})
                        else:
                            send(c, {"id": rid, "ok": False, "error": "invalid_conversation",
                                     "message": "no such conversation"})
                    else:
                        send(c, {"id": rid, "ok": True})
                elif mode == "drop-first":
                    if index == 0:
                        return
                    with lock:
                        state["attempt"] += 1
                        n = state["attempt"]
                    send(c, {"id": rid, "ok": True, "op": op, "attempt": n, "user": "alice"})
                elif mode == "silent":
                    continue
                elif mode == "junk":
                    send(c, b"this is not json")
                elif mode == "echo":
                    send(c, {"id": rid, "ok": True, "request": req})

    while True:
        c, _ = srv.accept()
        with lock:
            index = state["conns"]
            state["conns"] += 1
        threading.Thread(target=serve, args=(c, index), daemon=True).start()


if __name__ == "__main__":
    main()
