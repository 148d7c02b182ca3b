"""Interrupting a long `train` (SIGINT and interrupt_request), shutdown and restart, and a kernel whose parent
dies."""
import os
import subprocess
import sys
import textwrap
import time

import pytest
from jupyter_client.manager import start_new_kernel

from conftest import KERNEL_NAME
from kernel_helpers import collect_outputs, execute, get_reply, wait_for_iopub

SETUP = """\
acts = synth d=16 features=64 active=3 layers=2 norms=[1,4] tokens=20k seed=1 out="{store}"
s = sae relu acts expansion=2 alpha=1e-3
"""
# Far more steps than a test could wait for: only an interrupt ends it.
LONG_TRAIN = "train s acts steps=100M batch=64 log_every=1000"


@pytest.fixture(scope="module")
def trained_kernel(tmp_path_factory):
    km, kc = start_new_kernel(kernel_name=KERNEL_NAME, startup_timeout=60)
    store = tmp_path_factory.mktemp("store") / "synthetic"
    reply, _ = execute(kc, SETUP.format(store=store))
    assert reply["status"] == "ok", reply
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel(now=False)


def interrupt_long_train(kc, interrupt):
    msg_id = kc.execute(LONG_TRAIN)
    # Interrupt once training visibly runs: its live progress bar has been drawn.
    bar, seen = wait_for_iopub(kc, msg_id, lambda m: m["msg_type"] == "display_data", timeout=60)
    display_id = bar["content"]["transient"]["display_id"]
    assert "train" in bar["content"]["data"]["text/plain"]
    time.sleep(0.3)
    started = time.time()
    interrupt()
    reply = get_reply(kc, msg_id, timeout=30)
    elapsed = time.time() - started
    outputs = collect_outputs(kc, msg_id, already_received=seen)
    return reply["content"], outputs, display_id, elapsed


def check_interrupted_and_usable(kc, reply, outputs, display_id, elapsed):
    assert reply["status"] == "error" and reply["ename"] == "Interrupted", reply
    assert elapsed < 10, f"interrupt took {elapsed:.1f}s"
    updates = [m for m in outputs if m["msg_type"] == "update_display_data"]
    assert updates and all(m["content"]["transient"]["display_id"] == display_id for m in updates)
    assert [m["msg_type"] for m in outputs if m["msg_type"] == "error"] == ["error"]
    # The session survives with the SAE trained so far.
    reply, outputs = execute(kc, "eval s acts tokens=2k")
    assert reply["status"] == "ok", reply
    result = [m for m in outputs if m["msg_type"] == "execute_result"]
    assert result and "explained_variance" in result[0]["content"]["data"]["text/plain"]


def test_sigint_interrupts_a_long_train_and_the_sae_stays_usable(trained_kernel):
    km, kc = trained_kernel
    check_interrupted_and_usable(kc, *interrupt_long_train(kc, km.interrupt_kernel))


def test_interrupt_request_on_control_interrupts_a_long_train(trained_kernel):
    km, kc = trained_kernel

    def send_interrupt_request():
        kc.control_channel.send(kc.session.msg("interrupt_request", {}))

    check_interrupted_and_usable(kc, *interrupt_long_train(kc, send_interrupt_request))
    reply = kc.control_channel.get_msg(timeout=10)
    assert reply["msg_type"] == "interrupt_reply" and reply["content"]["status"] == "ok"


def test_shutdown_while_a_command_runs_and_restart(tmp_path):
    km, kc = start_new_kernel(kernel_name=KERNEL_NAME, startup_timeout=60)
    try:
        reply, _ = execute(kc, "kept = 1")
        first_pid = km.provisioner.pid
        km.restart_kernel(now=False)
        kc.wait_for_ready(timeout=60)
        assert km.provisioner.pid != first_pid
        reply, _ = execute(kc, "kept")
        assert reply["status"] == "error", "a restarted kernel starts with a fresh session"
        # Shutdown is answered on control even while a long command runs on shell.
        kc.execute(SETUP.format(store=tmp_path / "s") + LONG_TRAIN)
        time.sleep(1.0)
        started = time.time()
        km.shutdown_kernel(now=False)
        assert time.time() - started < 4.5, "the kernel needed SIGTERM/SIGKILL"
        assert not km.is_alive()
    finally:
        kc.stop_channels()
        if km.is_alive():
            km.shutdown_kernel(now=True)


def test_the_managers_shutdown_request_is_answered_though_it_reuses_a_client_msg_id():
    # jupyter_client numbers msg_ids per Session object ({session}_{pid}_{n}); the KernelManager and its client are
    # two such objects with one session id, so the manager's first shutdown_request has the id of the client's first
    # request. A kernel that took that for a replay dropped it, and jupyter_client killed it after 5 s.
    km, kc = start_new_kernel(kernel_name=KERNEL_NAME, startup_timeout=60)
    try:
        reply, _ = execute(kc, "kept = 1")
        assert reply["status"] == "ok", reply
        process = km.provisioner.process
        started = time.time()
        km.shutdown_kernel(now=False)
        elapsed = time.time() - started
        assert not km.is_alive()
        assert elapsed < 3, f"shutdown took {elapsed:.1f} s: the kernel did not act on the shutdown_request"
        assert process.returncode == 0, f"the kernel was killed (exit status {process.returncode})"
    finally:
        kc.stop_channels()
        if km.is_alive():
            km.shutdown_kernel(now=True)


def process_gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"  # exited, waiting to be reaped
    except FileNotFoundError:
        return True


def test_kernel_exits_when_the_process_that_started_it_dies():
    starter = textwrap.dedent(f"""
        import os, sys
        from jupyter_client.manager import start_new_kernel
        km, kc = start_new_kernel(kernel_name={KERNEL_NAME!r}, startup_timeout=60)
        print(km.provisioner.pid, flush=True)
        os._exit(0)  # dies without shutting the kernel down
    """)
    done = subprocess.run([sys.executable, "-c", starter], capture_output=True, text=True, timeout=90,
                          env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout.split()[-1])
    deadline = time.time() + 10
    while time.time() < deadline and not process_gone(pid):
        time.sleep(0.1)
    if not process_gone(pid):
        os.kill(pid, 9)
        pytest.fail("the orphaned kernel kept running")
