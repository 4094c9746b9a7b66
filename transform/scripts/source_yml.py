"""Write transform/models/sources/<tap>.yml from a tap's catalog.

    meltano invoke --dump=catalog tap-x > /tmp/x.json
    python transform/scripts/source_yml.py tap_x /tmp/x.json > transform/models/sources/tap_x.yml

One table per stream, every column with its type and the tap's description,
the primary key and replication key in the table's description, freshness on
the replication key. Edit the output freely afterwards: the file is the
source of truth once committed; the script only saves typing for new streams.
"""

from __future__ import annotations

import json
import sys

DATE_LIKE = {"window_start", "window_end", "date", "period_start"}


def kind(spec: dict) -> str:
    types = spec.get("type", [])
    types = [types] if isinstance(types, str) else types
    types = [t for t in types if t != "null"]
    if spec.get("format") == "date-time":
        return "timestamp (UTC)"
    if spec.get("format") == "date":
        return "date"
    return "/".join(types) or "any"


def quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def main(source: str, catalog_path: str) -> None:
    with open(catalog_path) as file:
        raw = file.read()
    catalog = json.loads(raw[raw.index("{"):])
    out = [
        "version: 2",
        "",
        "sources:",
        f"  - name: {source}",
        f"    description: Raw tables of {source.replace('_', '-')} (one table per stream), "
        "in the load schema of each account.",
        f"    schema: \"{{{{ var('source_schemas')['{source}'][0] }}}}\"",
        "    config:",
        "      freshness:",
        "        warn_after: {count: \"{{ var('freshness_warn_days', 2) }}\", period: day}",
        "        error_after: {count: \"{{ var('freshness_error_days', 7) }}\", period: day}",
        "    tables:",
    ]
    for stream in sorted(catalog["streams"], key=lambda s: s["tap_stream_id"]):
        meta = next(m["metadata"] for m in stream["metadata"] if m["breadcrumb"] == [])
        keys = meta.get("table-key-properties") or []
        replication = (meta.get("valid-replication-keys") or [None])[0]
        props = stream["schema"].get("properties", {})
        text = f"Stream `{stream['tap_stream_id']}`; primary key {', '.join(f'`{k}`' for k in keys) or 'none'}"
        text += f"; replication key `{replication}`." if replication else "; full table."
        out += [f"      - name: {stream['tap_stream_id']}", f"        description: {quote(text)}"]
        loaded_at = None
        if replication and replication in props:
            spec = props[replication]
            if spec.get("format") == "date-time":
                loaded_at = replication.lower()
            elif replication.lower() in DATE_LIKE:
                loaded_at = f"cast({replication.lower()} as timestamp)"
        if loaded_at:
            out += ["        config:", f"          loaded_at_field: {quote(loaded_at)}"]
        else:
            out += ["        config:", "          freshness: null"]
        out.append("        columns:")
        for name, spec in props.items():
            doc = spec.get("description") or ""
            label = f"`{name}` ({kind(spec)})"
            if name in keys:
                label += ", primary key"
            if name == replication:
                label += ", replication key"
            description = label + (". " + doc if doc else ".")
            out += [f"          - name: {name.lower()}", f"            description: {quote(description)}"]
    print("\n".join(out))


if __name__ == "__main__":
    main(*sys.argv[1:])
