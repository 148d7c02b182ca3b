"""jupyter_kernel_test 0.7 against the nsae kernel: every attribute that applies to the language.

Not set, because the language has no such feature: code_stderr (no verb writes to stderr), code_page_something
(no pager payloads), code_clear_output (no verb clears output).
"""
import jupyter_kernel_test

from conftest import KERNEL_NAME


class NSAEKernelConformance(jupyter_kernel_test.KernelTests):
    kernel_name = KERNEL_NAME
    language_name = "nsae"
    file_extension = ".nsae"

    code_hello_world = 'echo "hello, world"'

    completion_samples = [
        {"text": "ech", "matches": {"echo"}},
        {"text": "set thr", "matches": {"threads="}},
        {"text": "help tr", "matches": {"train"}},
    ]
    complete_code_samples = ['echo "a"', "vars", "x = 2k", "help echo"]
    incomplete_code_samples = ['echo "abc', "echo \\"]
    invalid_code_samples = ["echo )", "= 3"]

    code_generate_error = "nosuchverb"
    code_execute_result = [
        {"code": "2k", "result": "2000"},
        {"code": "1.5", "result": "1.5"},
    ]
    code_display_data = [
        {"code": "t = help\nshow t", "mime": "text/html"},
        {"code": "show 2k", "mime": "text/plain"},
    ]
    code_history_pattern = "2*"
    supported_history_operations = ("tail", "range", "search")
    code_inspect_sample = "echo"
