#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The sample app behind latch: a page that shows who is signed in.

It trusts X-Latch-User and X-Latch-Groups because nginx sets them from
latch-http's answer to the auth_request (and overwrites whatever a browser
sent); it must listen where only nginx can reach it (here: loopback).

Usage: whoami.py PORT
"""

import html
import sys
from urllib.parse import quote
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Protected page</title>
<style>
body{{font:1.1rem/1.5 system-ui,sans-serif;max-width:30rem;margin:3rem auto;padding:0 1rem}}
button{{font:inherit;padding:.5rem 1rem}}
</style>
</head>
<body>
<main>
<h1>Protected page</h1>
<p>Signed in as <strong id="user">{user}</strong>.</p>
<p>Groups: <span id="groups">{groups}</span></p>
<p>Path: <code id="path">{path}</code></p>
<p><a id="password" href="/password?rd={rd}">Change password</a></p>
<form method="post" action="/logout">
<button type="submit" id="logout">Sign out</button>
</form>
</main>
</body>
</html>
"""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = PAGE.format(user=html.escape(self.headers.get("X-Latch-User", "")),
                           groups=html.escape(self.headers.get("X-Latch-Groups", "")),
                           path=html.escape(self.path),
                           rd=html.escape(quote(self.path, safe="/"))).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer.request_queue_size = 128
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    server.serve_forever()
