"""Behaviour of the nsae kernel under real jupyter_client clients: output order, errors, stop_on_error,
completion, comms, forged and garbage messages on the shell socket, SIGINT while idle."""
import hashlib
import hmac
import json
import random
import shutil
import time
import uuid

import pytest
import zmq
from jupyter_client.manager import start_new_kernel

from conftest import KERNEL_NAME
from kernel_helpers import collect_outputs, drain_iopub, execute, get_reply


@pytest.fixture(scope="module")
def kernel():
    km, kc = start_new_kernel(kernel_name=KERNEL_NAME, startup_timeout=60)
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel(now=False)


def test_one_execute_publishes_outputs_in_order_before_idle(kernel):
    _, kc = kernel
    reply, outputs = execute(kc, 'echo "first"\nt = help\nshow t\n2k')
    assert reply["status"] == "ok"
    assert [m["msg_type"] for m in outputs] == ["stream", "display_data", "execute_result"]
    assert outputs[0]["content"] == {"name": "stdout", "text": "first\n"}
    table = outputs[1]["content"]["data"]
    assert "<table" in table["text/html"] and "text/plain" in table
    assert "application/json" not in table, "JupyterLab would show a JSON tree instead of the table"
    result = outputs[2]["content"]
    assert result["data"]["text/plain"] == "2000"
    assert result["execution_count"] == reply["execution_count"]


def test_error_names_the_line_and_keeps_earlier_output_and_bindings(kernel):
    _, kc = kernel
    reply, outputs = execute(kc, 'kept = 7\necho "before"\nnosuchverb 1')
    assert reply["status"] == "error"
    assert [m["msg_type"] for m in outputs] == ["stream", "error"]
    traceback = "\n".join(outputs[1]["content"]["traceback"])
    assert "line 3" in traceback and "nosuchverb 1" in traceback and "^" in traceback
    reply, outputs = execute(kc, "kept")
    assert outputs[0]["content"]["data"]["text/plain"] == "7"


def test_is_complete_follows_the_parser_for_strings_and_lists(kernel):
    _, kc = kernel

    def status(code):
        kc.is_complete(code)
        return kc.get_shell_msg(timeout=10)["content"]["status"]

    assert status('echo "abc') == "incomplete"
    assert status('echo "abc\ndef"') == "complete"
    assert status("x = [1, 2") == "incomplete"
    assert status("x = [1,\n 2]") == "complete"
    assert status("x = [1 2]") == "invalid"
    reply, outputs = execute(kc, 'echo "abc\ndef"')
    assert reply["status"] == "ok" and outputs[0]["content"]["text"] == "abc\ndef\n"


def test_a_syntax_error_on_line_three_runs_nothing(kernel):
    _, kc = kernel
    reply, outputs = execute(kc, 'typo_guard = 1\necho "ran"\nz = [1 2]')
    assert reply["status"] == "error" and reply["ename"] == "SyntaxError"
    assert [m["msg_type"] for m in outputs] == ["error"], "nothing before the syntax error runs"
    assert "line 3" in "\n".join(reply["traceback"])
    reply, _ = execute(kc, "typo_guard")
    assert reply["status"] == "error", "line 1 did not run, so nothing is bound"


def test_every_unbound_result_of_a_cell_is_shown(kernel):
    _, kc = kernel
    reply, outputs = execute(kc, "t = help\nt\nbound = 3\n2k")
    assert reply["status"] == "ok"
    assert [m["msg_type"] for m in outputs] == ["display_data", "execute_result"]
    assert "<table" in outputs[0]["content"]["data"]["text/html"]
    assert outputs[1]["content"]["data"]["text/plain"] == "2000"


def test_stop_on_error_aborts_requests_queued_behind_a_failure(kernel):
    _, kc = kernel
    failing = kc.execute("nosuchverb")
    queued = kc.execute('echo "must not run"')
    first = get_reply(kc, failing)
    second = get_reply(kc, queued)
    assert first["content"]["status"] == "error"
    assert second["content"]["status"] == "abort"
    assert isinstance(second["content"]["execution_count"], int)
    assert all(m["msg_type"] != "stream" for m in collect_outputs(kc, queued))
    reply, outputs = execute(kc, 'echo "runs again"')
    assert reply["status"] == "ok" and outputs[0]["content"]["text"] == "runs again\n"


def test_silent_execution_publishes_nothing_and_keeps_the_count(kernel):
    _, kc = kernel
    before, _ = execute(kc, "1")
    reply, outputs = execute(kc, 'echo "hidden"\n5', silent=True)
    assert reply["status"] == "ok" and outputs == []
    after, _ = execute(kc, "1")
    assert after["execution_count"] == before["execution_count"] + 1


def test_completion_offsets_count_code_points(kernel):
    _, kc = kernel
    code = 'echo "é😀"\nech'
    kc.complete(code, cursor_pos=len(code))
    reply = kc.get_shell_msg(timeout=10)["content"]
    assert reply["matches"] == ["echo"]
    assert (reply["cursor_start"], reply["cursor_end"]) == (len(code) - 3, len(code))
    assert reply["metadata"] == {}


def test_inspect_and_comms(kernel):
    _, kc = kernel
    kc.inspect("train", cursor_pos=2)
    reply = kc.get_shell_msg(timeout=10)["content"]
    assert reply["found"] and "train" in reply["data"]["text/plain"]
    kc.comm_info()
    assert kc.get_shell_msg(timeout=10)["content"] == {"status": "ok", "comms": {}}
    drain_iopub(kc)
    comm_id = uuid.uuid4().hex
    kc.shell_channel.send(kc.session.msg("comm_open", {"comm_id": comm_id, "target_name": "x", "data": {}}))
    deadline = time.time() + 10
    while time.time() < deadline:
        msg = kc.get_iopub_msg(timeout=10)
        if msg["msg_type"] == "comm_close":
            assert msg["content"]["comm_id"] == comm_id
            break
    else:
        pytest.fail("no comm_close for an unknown comm target")


def test_sigint_while_idle_does_not_kill_the_kernel(kernel):
    km, kc = kernel
    for _ in range(3):
        km.interrupt_kernel()
        time.sleep(0.1)
    assert km.is_alive()
    reply, outputs = execute(kc, 'echo "still here"')
    assert reply["status"] == "ok" and outputs[0]["content"]["text"] == "still here\n"


def raw_shell_socket(km):
    info = km.get_connection_info()
    context = zmq.Context.instance()
    socket = context.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(f"tcp://{info['ip']}:{info['shell_port']}")
    return socket


def signed(key, header, content, parent=None, metadata=None):
    parts = [json.dumps(p).encode() for p in (header, parent or {}, metadata or {}, content)]
    digest = hmac.new(key, b"".join(parts), hashlib.sha256).hexdigest().encode()
    return [b"<IDS|MSG>", digest] + parts


def header(msg_type):
    return {"msg_id": uuid.uuid4().hex, "msg_type": msg_type, "session": uuid.uuid4().hex, "username": "t",
            "date": "2026-01-01T00:00:00Z", "version": "5.3"}


def test_forged_and_unsigned_messages_are_dropped(kernel):
    km, kc = kernel
    socket = raw_shell_socket(km)
    try:
        socket.send_multipart(signed(b"not-the-key", header("kernel_info_request"), {}))
        unsigned = signed(km.session.key, header("execute_request"), {"code": 'echo "forged"'})
        unsigned[1] = b""
        socket.send_multipart(unsigned)
        assert socket.poll(1000) == 0, "the kernel answered a message with a bad signature"
        # The same socket with a correct signature is answered: the drop was about the signature.
        socket.send_multipart(signed(km.session.key, header("kernel_info_request"), {}))
        assert socket.poll(10000) != 0
        reply = socket.recv_multipart()
        assert json.loads(reply[reply.index(b"<IDS|MSG>") + 2])["msg_type"] == "kernel_info_reply"
    finally:
        socket.close()
    reply, outputs = execute(kc, 'echo "answering"')
    assert reply["status"] == "ok" and all("forged" not in m["content"].get("text", "") for m in outputs)


def garbage_messages(key, count, rng):
    """Random and mutated multipart messages: bad JSON, wrong frame counts, huge frames, bad UTF-8."""
    good = signed(key, header("execute_request"), {"code": "1"})
    for i in range(count):
        kind = i % 6
        if kind == 0:
            yield [rng.randbytes(rng.randrange(0, 40)) for _ in range(rng.randrange(1, 10))]
        elif kind == 1:
            yield [b"<IDS|MSG>"] + [b"{}"] * rng.randrange(0, 5)
        elif kind == 2:  # correctly signed, broken JSON or bad UTF-8 inside
            frames = [b'{"msg_type": "execute_request", "msg_id": "\xff\xfe"}', b"{", b"[]", b'{"code": 1']
            rng.shuffle(frames)
            digest = hmac.new(key, b"".join(frames), hashlib.sha256).hexdigest().encode()
            yield [b"<IDS|MSG>", digest] + frames
        elif kind == 3:  # a good message with one byte changed
            frames = list(good)
            j = rng.randrange(2, len(frames))
            b = bytearray(frames[j])
            if b:
                b[rng.randrange(len(b))] ^= 0x20
            frames[j] = bytes(b)
            yield frames
        elif kind == 4:  # correctly signed but not a request anyone knows, or a non-object frame
            yield signed(key, header(f"bogus_{i}_request"), {"x": "\u0000é"})
        else:
            huge = b"[" * (2_000_000 if i % 600 == 5 else 200)
            yield [b"<IDS|MSG>", b"0" * 64, huge, b"{}", b"{}", b"{}"]


def test_a_burst_of_garbage_on_the_shell_socket_leaves_the_kernel_answering(kernel):
    km, kc = kernel
    socket = raw_shell_socket(km)
    try:
        for frames in garbage_messages(km.session.key, 3000, random.Random(1)):
            socket.send_multipart(frames)
    finally:
        socket.close()
    assert km.is_alive()
    reply, outputs = execute(kc, 'echo "survived"', timeout=60)
    assert reply["status"] == "ok" and outputs[0]["content"]["text"] == "survived\n"
    assert kc.is_alive()


def test_a_figure_a_command_showed_is_saved_from_its_result(kernel, tmp_path):
    """`s = stats toy` binds the table; `save s "…svg"`/".png" writes the figure `stats` displayed."""
    _, kc = kernel
    reply, outputs = execute(kc, f'toy = synth d=8 features=16 active=2 norms=[1,4] tokens=500 out="{tmp_path}/toy"\n'
                                 f's = stats toy\nsave s "{tmp_path}/norms.svg"')
    assert reply["status"] == "ok", reply
    shown = [m["content"]["data"]["image/svg+xml"] for m in outputs
             if m["msg_type"] == "display_data" and "image/svg+xml" in m["content"]["data"]]
    assert shown and "toy: activation norms" in shown[-1], "the figure names the store"
    assert (tmp_path / "norms.svg").read_text() == shown[-1] + "\n"
    if shutil.which("rsvg-convert") is None:
        pytest.skip("rsvg-convert (Debian librsvg2-bin, installed by scripts/setup) is not on PATH: .png not checked")
    reply, _ = execute(kc, f'save s "{tmp_path}/norms.png"')
    assert reply["status"] == "ok", reply
    assert (tmp_path / "norms.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
