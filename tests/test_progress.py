"""``cinn.apps.common.progress``: a line rewritten in place on a terminal, plain lines in a log."""
import io

from cinn.apps.common.progress import progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_terminal_gets_one_line_rewritten_in_place():
    out = Terminal()
    assert list(progress(["a", "b", "c"], "images", stream=out)) == ["a", "b", "c"]
    text = out.getvalue()
    assert text == ("\r[cinn] 1/3 images, 0 s\r[cinn] 2/3 images, 0 s"
                    "\r[cinn] 3/3 images, 0 s\n")


def test_a_log_gets_plain_lines_at_the_interval_and_after_the_last_item():
    out = io.StringIO()                                   # not a terminal: a file or pipe
    assert list(progress(range(4), "images", stream=out, interval=0)) == [0, 1, 2, 3]
    assert out.getvalue().splitlines() == [f"[cinn] {i}/4 images, 0 s" for i in (1, 2, 3, 4)]
    out = io.StringIO()
    list(progress(range(50), "images of set5", stream=out, interval=3600))
    assert out.getvalue() == "[cinn] 50/50 images of set5, 0 s\n"   # no control characters


def test_nothing_is_written_for_no_items():
    out = Terminal()
    assert list(progress([], "images", stream=out)) == []
    assert out.getvalue() == ""
