"""The kernel under hostile or careless clients, started directly from a connection file so its log can be read:
a 1 GiB frame announced over raw ZMTP (no key needed to send it), an unsigned connection file, a replayed signed
message, and signed requests it cannot handle. After each, kernel_info is still answered."""
import hashlib
import hmac
import json
import os
import pathlib
import socket
import struct
import subprocess
import time
import uuid

import pytest
from jupyter_client import BlockingKernelClient
from jupyter_client.connect import write_connection_file

from conftest import nsae_binary


class DirectKernel:
    """`nsae kernel -f FILE` with stderr in a file, and a jupyter_client client on it."""

    def __init__(self, tmp_path, key, *args, env=None):
        self.path = str(tmp_path / f"kernel-{uuid.uuid4().hex}.json")
        write_connection_file(self.path, ip="127.0.0.1", key=key.encode())
        self.info = json.loads(pathlib.Path(self.path).read_text())
        self.log_path = tmp_path / "kernel.log"
        self.log = open(self.log_path, "wb")
        environment = dict(os.environ, NSAE_KERNEL_LOG="info", **(env or {}))
        self.proc = subprocess.Popen([nsae_binary(), "kernel", "-f", self.path, *args], stderr=self.log,
                                     stdout=subprocess.DEVNULL, env=environment)
        self.client = BlockingKernelClient(connection_file=self.path)
        self.client.load_connection_file()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def log_text(self):
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def kernel_info(self):
        msg_id = self.client.kernel_info()
        while True:
            reply = self.client.get_shell_msg(timeout=20)
            if reply["parent_header"].get("msg_id") == msg_id:
                assert reply["content"]["status"] == "ok"
                return reply["content"]

    def rss_bytes(self):
        for line in pathlib.Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def close(self):
        self.client.stop_channels()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture
def signed_kernel(tmp_path):
    kernel = DirectKernel(tmp_path, str(uuid.uuid4()))
    yield kernel
    kernel.close()


def zmtp_dealer(port):
    """A raw TCP connection that completes the ZMTP 3.0 NULL handshake as a DEALER (RFC 23)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    greeting = b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + b"\x00" + b"\x00" * 31
    sock.sendall(greeting)
    ready = b"\x05READY" + b"\x0bSocket-Type" + struct.pack(">I", 6) + b"DEALER"
    sock.sendall(bytes([0x04, len(ready)]) + ready)
    received = b""
    while len(received) < 64 + 2:
        received += sock.recv(4096)
    assert received[0] == 0xFF and received[10] == 3, received[:12]
    return sock


def test_a_1gib_frame_disconnects_its_sender_before_the_kernel_buffers_it(signed_kernel):
    kernel = signed_kernel
    before = kernel.rss_bytes()
    sock = zmtp_dealer(kernel.info["shell_port"])
    # One long frame of 1 GiB: flags 0x02 (LONG), then the 8-byte size; no signature, no key needed.
    chunk = b"\x00" * (1 << 20)
    sent = 0
    started = time.time()
    try:
        sock.sendall(b"\x02" + struct.pack(">Q", 1 << 30))
        while sent < (1 << 30):
            sock.sendall(chunk)
            sent += len(chunk)
        pytest.fail(f"the kernel took all of a 1 GiB frame ({time.time() - started:.1f} s)")
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        sock.close()
    # Only what the sockets' buffers held before libzmq saw the size and dropped the connection.
    assert sent < (64 << 20), f"{sent} bytes went through before the disconnect"
    assert kernel.rss_bytes() < before + (64 << 20), (before, kernel.rss_bytes())
    assert kernel.proc.poll() is None
    kernel.kernel_info()


def test_the_message_limit_can_be_set_and_is_logged(tmp_path):
    kernel = DirectKernel(tmp_path, str(uuid.uuid4()), "--max-message-bytes", "100000")
    try:
        assert "messages up to 100000 bytes" in kernel.log_text()
        # A 200 kB execute is over the limit: no reply, and its sender keeps being answered after it reconnects.
        msg_id = kernel.client.execute('echo "' + "a" * 200_000 + '"')
        with pytest.raises(Exception):
            while True:
                reply = kernel.client.get_shell_msg(timeout=2)
                if reply["parent_header"].get("msg_id") == msg_id:
                    pytest.fail("an execute over the message limit was answered")
        kernel.kernel_info()
    finally:
        kernel.close()
    bad = subprocess.run([nsae_binary(), "kernel", "-f", str(tmp_path / "none.json")], capture_output=True, text=True,
                         env=dict(os.environ, NSAE_KERNEL_MAX_MESSAGE_BYTES="lots"), timeout=60)
    assert bad.returncode != 0 and "NSAE_KERNEL_MAX_MESSAGE_BYTES" in bad.stderr


def test_an_unsigned_connection_file_is_warned_about_in_the_log_and_the_banner(tmp_path):
    kernel = DirectKernel(tmp_path, "")
    try:
        assert "WARNING: the connection file has no key, so messages are not signed" in kernel.log_text()
        info = kernel.kernel_info()
        assert "messages are not signed" in info["banner"]
    finally:
        kernel.close()


def signed_frames(key, msg_type, content, msg_id=None):
    header = {"msg_id": msg_id or uuid.uuid4().hex, "msg_type": msg_type, "session": "s", "username": "t",
              "date": "2026-01-01T00:00:00Z", "version": "5.3"}
    parts = [json.dumps(p).encode() for p in (header, {}, {}, content)]
    digest = hmac.new(key, b"".join(parts), hashlib.sha256).hexdigest().encode()
    return header, [b"<IDS|MSG>", digest] + parts


def raw_dealer(kernel, channel="shell"):
    import zmq
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(f"tcp://127.0.0.1:{kernel.info[channel + '_port']}")
    return sock


def replies(sock, wait_ms):
    out = []
    while sock.poll(wait_ms):
        frames = sock.recv_multipart()
        out.append({name: json.loads(frames[frames.index(b"<IDS|MSG>") + 2 + i])
                    for i, name in enumerate(["header", "parent_header", "metadata", "content"])})
        wait_ms = 300
    return out


def test_a_replayed_signed_message_is_dropped_with_a_log_line(signed_kernel):
    kernel = signed_kernel
    key = kernel.info["key"].encode()
    sock = raw_dealer(kernel)
    try:
        header, frames = signed_frames(key, "execute_request", {"code": "v = 1", "silent": False})
        sock.send_multipart(frames)
        assert [r["content"]["status"] for r in replies(sock, 10_000)] == ["ok"]
        _, frames2 = signed_frames(key, "execute_request", {"code": "v = 2", "silent": False})
        sock.send_multipart(frames2)
        assert [r["content"]["status"] for r in replies(sock, 10_000)] == ["ok"]
        sock.send_multipart(frames)
        assert replies(sock, 1000) == [], "the replayed message was answered"
    finally:
        sock.close()
    assert f"dropping a replayed signed message (msg_id '{header['msg_id']}', execute_request)" in kernel.log_text()
    msg_id = kernel.client.execute("v")
    while True:
        msg = kernel.client.get_iopub_msg(timeout=20)
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "execute_result":
            assert msg["content"]["data"]["text/plain"] == "2", "the replayed `v = 1` ran"
            break
    kernel.kernel_info()


@pytest.mark.parametrize("channel,msg_type,content,ename,evalue", [
    ("shell", "execute_request", b'{"code": ', "MalformedMessage",
     "execute_request: content frame: invalid JSON at byte 9: unexpected end of input"),
    ("shell", "complete_request", b'"ech"', "MalformedMessage", "complete_request: content frame is not a JSON object"),
    ("shell", "execute_request", b'{"silent": false}', "InvalidRequest",
     "execute_request needs the field 'code' (a string)"),
    ("shell", "flying_request", b"{}", "UnknownMessageType",
     "the nsae kernel does not handle flying_request on the shell channel"),
    ("control", "shutdown_request", b'{"restart": 1}', "InvalidRequest",
     "shutdown_request: the field 'restart' must be a boolean, found 1"),
])
def test_signed_requests_the_kernel_cannot_handle_get_an_error_reply(signed_kernel, channel, msg_type, content,
                                                                     ename, evalue):
    kernel = signed_kernel
    key = kernel.info["key"].encode()
    header = {"msg_id": uuid.uuid4().hex, "msg_type": msg_type, "session": "s", "username": "t",
              "date": "2026-01-01T00:00:00Z", "version": "5.3"}
    parts = [json.dumps(header).encode(), b"{}", b"{}", content]
    digest = hmac.new(key, b"".join(parts), hashlib.sha256).hexdigest().encode()
    sock = raw_dealer(kernel, channel)
    try:
        sock.send_multipart([b"<IDS|MSG>", digest] + parts)
        got = replies(sock, 10_000)
    finally:
        sock.close()
    assert len(got) == 1, got
    reply = got[0]
    assert reply["header"]["msg_type"] == msg_type.replace("_request", "_reply")
    assert reply["parent_header"] == header
    assert reply["content"]["status"] == "error"
    assert (reply["content"]["ename"], reply["content"]["evalue"]) == (ename, evalue)
    assert kernel.proc.poll() is None
    kernel.kernel_info()
