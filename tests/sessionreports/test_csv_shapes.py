"""CSV shapes a real appliance may send: BOM, odd headers, ragged rows, blank
lines, another charset, header-only and empty reports. The sandbox serves
these bodies over HTTP in place of its generated CSVs."""

from __future__ import annotations

from tests.sandbox import Response
from tests.sandbox.sessionreports import REPORT_ID_BASE
from tests.sessionreports.helpers import TAP, config_for
from tests.taputil import run_tap

BODIES = {
    0: ("text/csv; charset=utf-8",
        b'\xef\xbb\xbfUser,User,,Note\r\nalice,bob,x,"multi\nline, ""quoted"""\r\n\r\ncarol,dave,y,z,EXTRA\r\n'),
    1: ("text/csv; charset=iso-8859-1", "Name;City\nZo\u00eb,K\u00f8ge\n".replace(";", ",").encode("latin-1")),
    2: ("text/csv", b"Only,A,Header\r\n"),
    3: ("application/octet-stream", b""),
}


def test_csv_shapes_become_the_right_rows(sandbox_factory):
    server = sandbox_factory("sessionreports", scale=4, days=2, definitions=0, subscriptions=0)

    def content(i: int, ext: str) -> Response:
        ctype, body = BODIES[i]
        return Response(200, iter([body[:7], body[7:]]), ctype)  # chunked, split mid-character

    server.app._content = lambda report_id, ext: content(report_id - REPORT_ID_BASE, ext)
    run = run_tap(TAP, config_for(server), streams=["reports", "report_rows"])
    assert run.returncode == 0, run.stderr[-3000:]
    rows = {(r["report_id"], r["row_number"]): r["columns"] for r in run.records("report_rows")}
    first, second = str(REPORT_ID_BASE), str(REPORT_ID_BASE + 1)
    assert rows == {
        (first, 1): {"User": "alice", "User_2": "bob", "column_3": "x", "Note": 'multi\nline, "quoted"'},
        (first, 2): {"User": "carol", "User_2": "dave", "column_3": "y", "Note": "z", "column_5": "EXTRA"},
        (second, 1): {"Name": "Zo\u00eb", "City": "K\u00f8ge"},
    }
    # the header-only and the empty report are read (and remembered) too
    assert len(server.logged(r"/csv$")) == 4
    partitions = run.bookmark("report_rows")["partitions"]
    assert {p["context"]["report_id"] for p in partitions} == {str(REPORT_ID_BASE + 2), str(REPORT_ID_BASE + 3)}
    assert all(p["complete"] for p in partitions)
