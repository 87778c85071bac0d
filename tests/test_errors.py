"""Which kind of failure an exception is (mmunlearn/errors.py): the user's, the machine's, a bug."""

import errno

import pytest

from mmunlearn.errors import UserKeyError, error_kind, one_line
from mmunlearn.registry import Registry


def raised(function):
    with pytest.raises(Exception) as info:
        function()
    return info.value


def test_an_input_check_of_mmunlearn_is_a_user_error():
    error = raised(lambda: Registry("method").get("vgdi"))  # a `raise KeyError(...)` statement
    assert error_kind(error) == "user" and one_line(error).startswith("unknown method 'vgdi'")


def test_the_same_types_raised_elsewhere_are_bugs():
    assert error_kind(raised(lambda: {}["key"])) == "bug"  # a lookup, in this file
    assert error_kind(raised(lambda: int("x"))) == "bug"
    from mmunlearn.cli import summary_line

    inside = raised(lambda: summary_line(b"bytes, not text"))  # a TypeError in mmunlearn's code
    assert isinstance(inside, TypeError) and error_kind(inside) == "bug"


def test_os_errors_about_paths_are_the_users_and_the_others_the_machines():
    assert error_kind(FileNotFoundError(errno.ENOENT, "No such file", "data.jsonl")) == "user"
    assert error_kind(IsADirectoryError(errno.EISDIR, "Is a directory", "out")) == "user"
    full = OSError(errno.ENOSPC, "No space left on device", "out/model")
    assert error_kind(full) == "os" and one_line(full) == "out/model: No space left on device"
    assert error_kind(PermissionError(errno.EACCES, "Permission denied", "out")) == "os"
    assert error_kind(OSError("cannot load the tokenizer from x")) == "user"  # transformers'


def test_a_user_error_class_is_one_wherever_it_is_raised():
    error = raised(lambda: (_ for _ in ()).throw(UserKeyError("train.keep_best: unknown rule")))
    assert error_kind(error) == "user" and one_line(error) == "train.keep_best: unknown rule"
    assert error_kind(RuntimeError("boom")) == "bug"
