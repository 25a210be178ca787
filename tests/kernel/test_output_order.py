"""Output order and whole placeholders, through a real ipykernel (issue: garbled first screen).

The stream redactor may hold text back while a secret could still be arriving. Before any display,
result, error, clear_output or widget message, and at the end of execution, that text is resolved and
sent first; a placeholder we produced is never split, held or re-scanned. Trust tier 1 (what a user
sees and what lands in the saved notebook), with the security guarantees of test_kernel_iopub kept.
"""
from __future__ import annotations

import re
import secrets as pysecrets
import textwrap

import pytest

pytestmark = pytest.mark.slow

PLACEHOLDER = "[REDACTED:known-secret]"
OUTPUT_TYPES = {"stream", "display_data", "update_display_data", "execute_result", "error", "clear_output",
                "comm_open", "comm_msg", "comm_close"}


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """One real kernel with the extension loaded and a registered secret `s` (and `pw`, its Secret)."""
    import os
    import sys

    from jupyter_securellm.testing.kernels import Kernel

    tmp = tmp_path_factory.mktemp("order")
    secret = "pw-" + pysecrets.token_urlsafe(24)
    (tmp / "s.txt").write_text(secret)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_SECURELLM", "PYTEST"))}
    env["IPYTHONDIR"] = str(tmp / "ipython")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    k = Kernel(env, str(tmp))
    k.run("%load_ext jupyter_securellm")
    k.run(textwrap.dedent(f"""
        import logging, os, sys, pathlib, ctypes
        from IPython.display import display, Markdown, clear_output
        from jupyter_securellm.kernel.redaction import add_secret
        from jupyter_securellm.kernel.secrets import Secret
        s = pathlib.Path({str(tmp / 's.txt')!r}).read_text()
        add_secret(s)          # what secrets.get() does with a value from Vault
        pw = Secret(s)
    """))
    k.secret = secret
    yield k
    k.shutdown()


def outputs(msgs):
    """(kind, text) per output message in arrival order; consecutive stream messages of one name merged."""
    out = []
    for m in msgs:
        t = m["msg_type"]
        if t not in OUTPUT_TYPES:
            continue
        c = m["content"]
        if t == "stream":
            kind = "stream:" + c["name"]
            if out and out[-1][0] == kind:
                out[-1] = (kind, out[-1][1] + c["text"])
            else:
                out.append((kind, c["text"]))
        elif t in ("display_data", "update_display_data", "execute_result"):
            out.append((t, c["data"].get("text/plain", "")))
        elif t == "error":
            out.append((t, c["evalue"]))
        elif t.startswith("comm"):
            out.append((t, repr(c.get("data", {}).get("state", {}))))
        else:
            out.append((t, ""))
    return out


def assert_placeholders_whole(msgs):
    """No message carries a piece of a placeholder: every `[REDACTED:` is closed in the same message."""
    for m in msgs:
        if m["msg_type"] != "stream":
            continue
        text = m["content"]["text"]
        stripped = re.sub(r"\[REDACTED:[a-z0-9-]+\]", "", text)
        assert "[REDACTED" not in stripped and "known-secret]" not in stripped, f"split placeholder in {text!r}"


def run(kernel, code, allow_error=False):
    msgs = kernel.run(code, allow_error=allow_error)
    assert kernel.secret not in kernel.text(msgs)
    assert_placeholders_whole(msgs)
    return outputs(msgs)


def test_print_secret_then_result(kernel):
    # the quickstart cell: `print(pw); pw` rendered `[REDACTED:`, the result, then `known-secret]`
    assert run(kernel, "print(pw); pw") == [
        ("stream:stdout", PLACEHOLDER + "\n"),
        ("execute_result", f"Secret('{PLACEHOLDER}')"),
    ]


def test_prints_around_a_result(kernel):
    assert run(kernel, "print('x', s); print('y'); 42") == [
        ("stream:stdout", f"x {PLACEHOLDER}\ny\n"),
        ("execute_result", "42"),
    ]


def test_logging_line_then_traceback(kernel):
    code = ("logging.basicConfig(force=True, stream=sys.stderr)\n"
            "logging.getLogger('app').warning('connecting with %s', s)\n"
            "raise RuntimeError('boom')")
    got = run(kernel, code, allow_error=True)
    assert got[0] == ("stream:stderr", f"WARNING:app:connecting with {PLACEHOLDER}\n")
    assert [k for k, _ in got] == ["stream:stderr", "error"]


def test_char_by_char_print_before_display(kernel):
    code = "for c in 'status: ' + s + ' ok':\n    print(c, end='', flush=True)\ndisplay(Markdown('**done**'))"
    assert run(kernel, code) == [
        ("stream:stdout", f"status: {PLACEHOLDER} ok"),
        ("display_data", "<IPython.core.display.Markdown object>"),
    ]


def test_secret_held_at_a_boundary_is_still_redacted(kernel):
    # the secret is complete but still held (more input could extend it) when the display comes
    code = "print('a', s, end='')\ndisplay('mid')\nprint(' b')"
    assert run(kernel, code) == [
        ("stream:stdout", f"a {PLACEHOLDER}"),
        ("display_data", "'mid'"),
        ("stream:stdout", " b\n"),
    ]


def test_text_before_error(kernel):
    got = run(kernel, "print('about to fail with', s, end='')\n1/0", allow_error=True)
    assert got == [("stream:stdout", f"about to fail with {PLACEHOLDER}"), ("error", "division by zero")]


def test_clear_output_wait(kernel):
    code = ("for i in range(3):\n"
            "    clear_output(wait=True)\n"
            "    print('step', i, 'of', end='')\n"
            "print(' done')")
    assert run(kernel, code) == [
        ("clear_output", ""), ("stream:stdout", "step 0 of"),
        ("clear_output", ""), ("stream:stdout", "step 1 of"),
        ("clear_output", ""), ("stream:stdout", "step 2 of done\n"),
    ]


def test_carriage_return_progress_then_display(kernel):
    # tqdm's way: rewrite one line with \r on stderr, then the result is displayed
    code = ("for i in range(0, 101, 25):\n"
            "    sys.stderr.write(f'\\rprogress {i}%|' + '#' * (i // 25)); sys.stderr.flush()\n"
            "display('table')")
    got = run(kernel, code)
    assert got[0][0] == "stream:stderr" and got[0][1].endswith("\rprogress 100%|####")
    assert got[1:] == [("display_data", "'table'")]


def test_widget_output_captures_its_text(kernel):
    # ipywidgets.Output routes stream messages by the msg_id set in its state; text held past the
    # closing comm_msg would land in the cell instead of the widget
    code = ("import ipywidgets as w\n"
            "out = w.Output()\n"
            "display(out)\n"
            "with out:\n"
            "    print('inside', s, 'tail', end='')\n"
            "print('outside')")
    got = run(kernel, code)
    kinds = [k for k, _ in got]
    inside = kinds.index("stream:stdout")
    assert got[inside] == ("stream:stdout", f"inside {PLACEHOLDER} tail")
    opened = [i for i, (k, t) in enumerate(got) if k == "comm_msg" and "'msg_id': ''" not in t and "msg_id" in t]
    closed = [i for i, (k, t) in enumerate(got) if k == "comm_msg" and "'msg_id': ''" in t]
    assert opened and closed and opened[0] < inside < closed[-1]
    assert got[-1] == ("stream:stdout", "outside\n")


def test_child_process_and_c_output_before_display(kernel):
    code = ("os.system('printf \"child says %s\" ' + repr(s))\n"
            "display('after child')\n"
            "libc = ctypes.CDLL(None)\n"
            "data = ('c says ' + s).encode()\n"
            "libc.write(1, data, len(data))\n"
            "display('after c')")
    assert run(kernel, code) == [
        ("stream:stdout", f"child says {PLACEHOLDER}"),
        ("display_data", "'after child'"),
        ("stream:stdout", f"c says {PLACEHOLDER}"),
        ("display_data", "'after c'"),
    ]


def test_held_text_arrives_before_the_reply(kernel):
    msgs = kernel.run("print('last words', end='')")
    kinds = [m["msg_type"] for m in msgs]
    assert kinds.index("stream") < kinds.index("execute_reply")
    assert kernel.stream_text(msgs) == "last words"


def test_placeholder_never_split_across_messages(kernel):
    # many placeholders, written in every way that cuts text: one char at a time, fd writes, batches
    code = ("for i in range(40):\n"
            "    print(pw, end=' ', flush=(i % 3 == 0))\n"
            "text = str(pw) * 5\n"
            "for c in text:\n"
            "    sys.stdout.write(c); sys.stdout.flush()\n"
            "os.write(1, (str(pw) + ' ') .encode() * 30)\n"
            "display('end')")
    msgs = kernel.run(code)
    assert_placeholders_whole(msgs)
    streams = "".join(m["content"]["text"] for m in msgs if m["msg_type"] == "stream")
    assert streams.count(PLACEHOLDER) == 40 + 5 + 30
    assert kernel.secret not in kernel.text(msgs)


def test_split_secret_still_caught(kernel):
    # the guarantees stay: one character at a time, over several writes, and with separators
    msgs = kernel.run("for c in s: print(c, end='', flush=True)\nprint()\n"
                      "half = len(s) // 2\nprint(s[:half], end=''); print(s[half:])\n"
                      "print(' '.join(s))")
    text = kernel.stream_text(msgs)
    assert kernel.secret not in text and " ".join(kernel.secret) not in text
    assert text.count(PLACEHOLDER) == 3


def test_text_held_on_stdout_goes_before_the_next_stderr_message(kernel):
    # the quickstart's "what redaction catches" cell: a secret printed one character at a time, then a
    # logging line on stderr; the placeholder must not arrive after the log line
    code = ("for c in s: print(c, end='', flush=True)\n"
            "logging.basicConfig(force=True, stream=sys.stderr)\n"
            "logging.getLogger('app').warning('connecting with %s', s)")
    got = run(kernel, code)
    assert got == [("stream:stdout", PLACEHOLDER), ("stream:stderr", f"WARNING:app:connecting with {PLACEHOLDER}\n")]


def test_a_large_child_output_arrives_whole_before_the_display(kernel):
    # a pipe full of output (64 KiB) is still unread when os.system returns: ipykernel's reader takes it
    # 1,000 bytes at a time; the display must wait for all of it
    code = "os.system(\"head -c 300000 /dev/zero | tr '\\\\0' x\")\ndisplay('after')"
    got = run(kernel, code)
    assert [k for k, _ in got] == ["stream:stdout", "display_data"]
    assert got[0][1] == "x" * 300000
