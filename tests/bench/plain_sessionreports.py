"""A plain Fudo PAM client: what tap-sessionreports is measured against.

    python -m tests.bench.plain_sessionreports reports URL TOKEN START
    python -m tests.bench.plain_sessionreports report_rows URL TOKEN START

``reports``: requests + json over the list's limit/offset pages (filtered by
modified_at, ordered by it), one JSON line per report. ``report_rows``: the
same list, then each ready report's CSV streamed (requests stream=True, the
csv module over the decoded body), one JSON line per row. Output to stdout.
"""

from __future__ import annotations

import csv
import io
import json
import sys

import requests

PAGE = 1000


def reports(session: requests.Session, url: str, start: str):
    offset = 0
    while True:
        params = {"filter": f"modified_at.ge({start})", "order": "modified_at", "limit": PAGE, "offset": offset}
        response = session.get(f"{url}/api/v2/report", params=params, timeout=300)
        response.raise_for_status()
        payload = response.json()
        if payload.get("result") != "success":
            raise SystemExit(f"unexpected answer: {str(payload)[:200]}")
        page = payload["report"]
        if not page:
            return
        yield from page
        offset += len(page)


def main(what: str, url: str, token: str, start: str) -> None:
    session = requests.Session()
    session.headers["Authorization"] = token
    write = sys.stdout.write
    dumps = json.dumps
    for report in reports(session, url, start):
        if what == "reports":
            write(dumps(report))
            write("\n")
            continue
        if not report["is_ready"]:
            continue
        response = session.get(f"{url}/api/v2/report/{report['id']}/csv", stream=True, timeout=300)
        response.raise_for_status()
        raw = response.raw
        raw.decode_content = True
        raw.auto_close = False
        reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""))
        header = next(reader)
        for number, row in enumerate(reader, start=1):
            write(dumps({"report_id": report["id"], "report_modified_at": report["modified_at"],
                         "row_number": number, "columns": dict(zip(header, row, strict=False))}))
            write("\n")
        response.close()


if __name__ == "__main__":
    main(*sys.argv[1:5])
