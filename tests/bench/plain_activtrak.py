"""A plain ActivTrak client: requests + json, the activity log's cursor pages,
one JSON line per entry to stdout. What the tap is measured against."""

from __future__ import annotations

import json
import sys

import requests


def main(url: str, token: str, start_date: str) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    params = {"startDate": start_date, "pageSize": 1000}
    write = sys.stdout.write
    while True:
        response = session.get(f"{url}/reports/v2/activitylog", params=params, timeout=300)
        response.raise_for_status()
        payload = response.json()
        if not payload["activity"]:
            break
        for row in payload["activity"]:
            write(json.dumps(row))
            write("\n")
        params = {"cursor": payload["cursor"], "pageSize": 1000}


if __name__ == "__main__":
    main(*sys.argv[1:4])
