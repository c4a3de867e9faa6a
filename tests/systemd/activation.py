# SPDX-License-Identifier: MIT
"""A latchd started the way systemd starts a socket-activated service.

ActivatedDaemon extends the e2e harness's Daemon: the test holds the
listening socket (bound and listening, as latchd.socket does) for the
daemon's whole life, and each latchd it starts gets that socket as fd 3 with
LISTEN_FDS=1 and LISTEN_PID set to latchd's own pid. Connections made while
no latchd runs wait in the socket's backlog, exactly as under systemd.
"""

import fcntl
import os
import socket
import subprocess

import harness

# The shell keeps its pid across exec, so $$ is latchd's pid, as systemd sets it.
# bash, since dash takes only one-digit fd numbers in redirections.
WRAPPER = 'export LISTEN_PID=$$ LISTEN_FDS=1; exec "$0" "$@" 3<&{fd} {fd}<&-'


class ActivatedDaemon(harness.Daemon):
    def __init__(self, tmp, **kw):
        super().__init__(tmp, **kw)
        self.listener = None
        self.listen_fd = -1

    def listen(self, backlog=4096):
        """Binds and listens at self.sock, as systemd does for latchd.socket."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o117)
        try:
            s.bind(self.sock)
        finally:
            os.umask(old)
        s.listen(backlog)
        self.listener = s
        # Above fd 3, so that the wrapper's dup to 3 never closes it.
        self.listen_fd = fcntl.fcntl(s.fileno(), fcntl.F_DUPFD_CLOEXEC, 10)
        return self

    def close_listener(self):
        if self.listen_fd >= 0:
            os.close(self.listen_fd)
            self.listen_fd = -1
        if self.listener:
            self.listener.close()
            self.listener = None

    def spawn(self, extra_env=None, extra_args=()):
        """Starts latchd on the held socket; returns without waiting."""
        assert self.listen_fd >= 0, "listen() first"
        if self.notify is None:
            self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            if os.path.exists(self.notify_path):
                os.unlink(self.notify_path)
            self.notify.bind(self.notify_path)
        env = self.env()
        env["NOTIFY_SOCKET"] = self.notify_path
        env.update(extra_env or {})
        log = open(self.log_path, "ab")
        cmd = ["bash", "-c", WRAPPER.format(fd=self.listen_fd), harness.LATCHD, "--config", self.conf]
        self.proc = subprocess.Popen(cmd + list(extra_args), env=env, stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL, cwd=self.tmp, pass_fds=(self.listen_fd,))
        log.close()
        return self

    def start(self, wait_ready=True, extra_args=(), extra_env=None):
        self.spawn(extra_env=extra_env, extra_args=extra_args)
        if wait_ready:
            self.wait_ready()
        return self
