"""A plain BeyondTrust client: what tap-beyondtrust is measured against.

    python -m tests.bench.plain_beyondtrust sessions URL CLIENT_ID SECRET START_TS END_TS
    python -m tests.bench.plain_beyondtrust archive URL CLIENT_ID SECRET DATE

``sessions``: one OAuth token, one SupportSession answer (end_time+duration)
read with requests stream=True and lxml iterparse (namespace-aware, elements
cleared), each session turned into a dict (attributes and children, nested
lists; the session_details events left out, as the tap's session stream does)
and written as a JSON line. ``archive``: ArchiveListing for DATE, then every
event archive streamed through gzip, one JSON line per event with its position.
"""

from __future__ import annotations

import gzip
import json
import sys

import requests
from lxml import etree

NS = "{https://www.beyondtrust.com/namespaces/API/reporting}"
LISTS = {"customer_list", "rep_list", "team_list", "custom_attributes", "show_my_screen_recordings",
         "command_shell_recordings", "cust_survey_list", "rep_survey_list"}


def token(session: requests.Session, url: str, client_id: str, secret: str) -> None:
    response = requests.post(f"{url}/oauth2/token", auth=(client_id, secret),
                             data={"grant_type": "client_credentials"}, timeout=300)
    response.raise_for_status()
    session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
    session.headers["Connection"] = "close"


def convert(el) -> object:
    out = dict(el.attrib)
    for child in el:
        name = child.tag[len(NS):]
        if name == "session_details":
            continue
        if name in LISTS:
            out[name] = [convert(c) for c in child]
        else:
            out[name] = convert(child)
    if not out:
        return el.text
    if el.text:
        out["value"] = el.text
    return out


def sessions(session: requests.Session, url: str, start: str, end: str) -> None:
    params = {"generate_report": "SupportSession", "end_time": start, "duration": int(end) - int(start)}
    response = session.get(f"{url}/api/reporting", params=params, stream=True, timeout=300)
    response.raise_for_status()
    response.raw.decode_content = True
    write = sys.stdout.write
    dumps = json.dumps
    for _, el in etree.iterparse(response.raw, events=("end",), tag=NS + "session",
                                 resolve_entities=False, no_network=True, huge_tree=True):
        write(dumps(convert(el)))
        write("\n")
        el.clear()
        while el.getprevious() is not None:
            del el.getparent()[0]


def archive(session: requests.Session, url: str, date: str) -> None:
    listing = session.get(f"{url}/api/reporting", params={"generate_report": "ArchiveListing", "date": date},
                          timeout=300)
    listing.raise_for_status()
    root = etree.fromstring(listing.content, etree.XMLParser(resolve_entities=False, no_network=True))
    indexes = [int(a.findtext(NS + "index")) for a in root.iter(NS + "event_archive")]
    write = sys.stdout.write
    dumps = json.dumps
    loads = json.loads
    for index in indexes:
        response = session.get(f"{url}/api/reporting", stream=True, timeout=300,
                               params={"generate_report": "Archive", "type": "event", "date": date, "index": index})
        response.raise_for_status()
        response.raw.decode_content = True
        for number, line in enumerate(gzip.GzipFile(fileobj=response.raw), start=1):
            event = loads(line)
            event["archive_date"], event["archive_index"], event["line"] = date, index, number
            write(dumps(event))
            write("\n")
        response.close()


def main(what: str, url: str, client_id: str, secret: str, *args: str) -> None:
    session = requests.Session()
    token(session, url, client_id, secret)
    if what == "sessions":
        sessions(session, url, *args)
    else:
        archive(session, url, *args)


if __name__ == "__main__":
    main(*sys.argv[1:])
