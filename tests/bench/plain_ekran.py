"""A plain Ekran client: requests + json, the same day windows and pageIndex
pages the tap asks for, one JSON line per session to stdout. What the tap is
measured against."""

from __future__ import annotations

import datetime as dt
import json
import sys

import requests

PAGE = 1000


def main(url: str, token: str, start: str, end: str, window_hours: str = "24") -> None:
    session = requests.Session()
    session.headers["ApiKey"] = token
    first = dt.datetime.fromisoformat(start)
    last = dt.datetime.fromisoformat(end)
    step = dt.timedelta(hours=float(window_hours))
    write = sys.stdout.write
    while first < last:
        window_end = min(first + step, last)
        page = 0
        while True:
            body = {
                "start": first.strftime("%Y-%m-%dT%H:%M:%S"),
                "end": min(window_end + dt.timedelta(seconds=1), last).strftime("%Y-%m-%dT%H:%M:%S"),
                "sessionCount": PAGE,
                "pageIndex": page,
            }
            response = session.post(f"{url}/ekranapi/sessions", json=body, timeout=300)
            response.raise_for_status()
            payload = response.json()
            for row in payload["sessions"]:
                write(json.dumps(row))
                write("\n")
            page += 1
            if len(payload["sessions"]) < PAGE or page * PAGE >= payload["totalCount"]:
                break
        first = window_end


if __name__ == "__main__":
    main(*sys.argv[1:6])
