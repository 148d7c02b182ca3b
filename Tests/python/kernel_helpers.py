"""Small helpers over jupyter_client for the kernel tests."""
import time
from queue import Empty


def execute(kc, code, timeout=60, **kwargs):
    """Runs `code`; returns (reply content, [iopub messages of this request other than status/execute_input]).

    Checks the protocol frame on the way: busy first, idle last, every message parented to the request."""
    msg_id = kc.execute(code, **kwargs)
    reply = get_reply(kc, msg_id, timeout)
    return reply["content"], collect_outputs(kc, msg_id, timeout)


def get_reply(kc, msg_id, timeout=60):
    deadline = time.time() + timeout
    while True:
        msg = kc.get_shell_msg(timeout=max(0.1, deadline - time.time()))
        if msg["parent_header"].get("msg_id") == msg_id:
            return msg


def collect_outputs(kc, msg_id, timeout=60, already_received=()):
    """The outputs of request `msg_id` up to its idle; `already_received` are its messages read earlier."""
    deadline = time.time() + timeout
    outputs, states = [], []
    pending = list(already_received)
    while True:
        msg = pending.pop(0) if pending else kc.get_iopub_msg(timeout=max(0.1, deadline - time.time()))
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "status":
            states.append(msg["content"]["execution_state"])
            if states[-1] == "idle":
                break
            continue
        assert states == ["busy"], f"{msg['msg_type']} outside busy/idle: {states}"
        if msg["msg_type"] != "execute_input":
            outputs.append(msg)
    assert states == ["busy", "idle"], states
    return outputs


def wait_for_iopub(kc, msg_id, predicate, timeout=60):
    """Returns the first iopub message of request `msg_id` satisfying `predicate`, and the ones before it."""
    deadline = time.time() + timeout
    seen = []
    while time.time() < deadline:
        try:
            msg = kc.get_iopub_msg(timeout=0.5)
        except Empty:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        seen.append(msg)
        if predicate(msg):
            return msg, seen
    raise AssertionError(f"no matching iopub message within {timeout}s; saw {[m['msg_type'] for m in seen]}")


def drain_iopub(kc, quiet=0.3):
    while True:
        try:
            kc.get_iopub_msg(timeout=quiet)
        except Empty:
            return
