#!/usr/bin/env python3
"""pty-answer.py TRANSCRIPT ANSWER... -- COMMAND...: runs COMMAND on a new pseudo-terminal (its controlling
terminal, so /dev/tty is that terminal), types each ANSWER and Enter after each prompt that ends in ": ",
writes everything the terminal showed to TRANSCRIPT and exits with COMMAND's status. Gives up (status 124)
when the command neither prompts nor ends within 60 seconds."""
import os, pty, select, sys, time

sep = sys.argv.index("--")
transcript, answers, cmd = sys.argv[1], sys.argv[2:sep], sys.argv[sep + 1:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)
seen, deadline, pending = b"", time.monotonic() + 60, list(answers)
status = None
while True:
    left = deadline - time.monotonic()
    if left <= 0:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        status = 124
        break
    r, _, _ = select.select([fd], [], [], min(left, 0.5))
    if r:
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if not data:
            break
        seen += data
        if pending and seen.rstrip(b" ").endswith(b":"):
            os.write(fd, pending.pop(0).encode() + b"\n")
            seen += b"<typed>"
    else:
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = os.waitstatus_to_exitcode(st)
            break
if status is None:
    status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
with open(transcript, "wb") as f:
    f.write(seen)
sys.exit(status if status >= 0 else 128 - status)
