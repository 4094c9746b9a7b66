"""A plain Ekran client: requests + json, the same range and pageIndex pages
the tap asks for, one JSON line per session to stdout. What the tap is
measured against."""

from __future__ import annotations

import datetime as dt
import json
import sys

import requests

PAGE = 1000


def main(url: str, token: str, start: str, end: str) -> None:
    session = requests.Session()
    session.headers["ApiKey"] = token
    body = {
        "start": dt.datetime.fromisoformat(start).strftime("%Y-%m-%dT%H:%M:%S"),
        "end": dt.datetime.fromisoformat(end).strftime("%Y-%m-%dT%H:%M:%S"),
        "sessionCount": PAGE,
        "pageIndex": 0,
    }
    write = sys.stdout.write
    while True:
        response = session.post(f"{url}/ekranapi/sessions", json=body, timeout=300)
        response.raise_for_status()
        payload = response.json()
        for row in payload["sessions"]:
            write(json.dumps(row))
            write("\n")
        body["pageIndex"] += 1
        if len(payload["sessions"]) < PAGE or body["pageIndex"] * PAGE >= payload["totalCount"]:
            break


if __name__ == "__main__":
    main(*sys.argv[1:5])
