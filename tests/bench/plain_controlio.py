"""A plain Controlio client: requests + json, the detailed activities report
in the same day windows and ``prev`` chunks as the tap, one JSON line per row
to stdout. What the tap is measured against."""

from __future__ import annotations

import datetime as dt
import json
import sys

import requests

PATH = "/api/v1/statistics/detailedActivities"
LIMIT = 10000


def main(url: str, token: str, first_day: str, last_day: str) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    write = sys.stdout.write
    day = dt.date.fromisoformat(first_day)
    last = dt.date.fromisoformat(last_day)
    while day <= last:
        params = {"start_time": day.isoformat(), "end_time": day.isoformat(), "limit": LIMIT,
                  "sort_direction": "asc"}
        while True:
            response = session.get(url + PATH, params=params, timeout=300)
            response.raise_for_status()
            rows = response.json()["data"]
            for row in rows:
                write(json.dumps(row))
                write("\n")
            if len(rows) < LIMIT:
                break
            last_row = rows[-1]
            params["prev"] = f"{last_row['start_time']},{last_row['user_id']},{last_row['computer_id']}"
        day += dt.timedelta(days=1)


if __name__ == "__main__":
    main(*sys.argv[1:5])
