"""VOSI documents: capabilities, availability and the tableset, read from TAP_SCHEMA so both always agree."""

from __future__ import annotations

from collections import defaultdict
from xml.sax.saxutils import escape, quoteattr

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from catalogdb.db.published import PG_TAP_SCHEMA
from catalogdb.tap import datalink, scs
from catalogdb.tap.query import TapConfig

XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
VS = 'xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1"'
# astroquery's TapPlus reads every <column> with a required ESA attribute; it is harmless to others.
ESA = 'xmlns:esatapplus="http://esa.int/xml/EsaTapPlus"'
GEOMETRY = ("POINT", "CIRCLE", "POLYGON", "BOX", "CONTAINS", "INTERSECTS", "DISTANCE", "COORD1", "COORD2")
OUTPUT_FORMATS = (
    ("ivo://ivoa.net/std/TAPRegExt#output-votable-td", "application/x-votable+xml", ("votable", "votable/td")),
    ("ivo://ivoa.net/std/TAPRegExt#output-votable-binary2", "application/x-votable+xml;serialization=BINARY2",
     ("votable/b2",)),
    (None, "text/csv;header=present", ("csv",)),
    (None, "application/fits", ("fits",)),
)


def _el(name: str, value) -> str:
    return f"<{name}>{escape(str(value))}</{name}>" if value not in (None, "") else ""


def _uploads(config: TapConfig) -> str:
    """TAPRegExt upload methods: inline always, http(s) URLs only where the service may fetch them."""
    methods = ["inline"] + (["http", "https"] if config.upload.allow_urls else [])
    return "".join(f'<uploadMethod ivo-id="ivo://ivoa.net/std/TAPRegExt#upload-{m}"/>' for m in methods)


def _other_services(root: str) -> str:
    """DataLink and Simple Cone Search, served beside the TAP service."""
    def cap(standard: str, path: str, result: str) -> str:
        return (f'<capability standardID="{standard}"><interface xsi:type="vs:ParamHTTP" role="std">'
                f'<accessURL use="base">{escape(root)}/{path}</accessURL><queryType>GET</queryType>'
                f"<resultType>{escape(result)}</resultType></interface></capability>")

    return (cap(datalink.STANDARD_ID, "datalink/links", datalink.LINKS_TYPE)
            + cap(scs.STANDARD_ID, "scs", "text/xml"))


def capabilities(base: str, config: TapConfig, root: str) -> str:
    """The VOSI capabilities of the TAP service at `base` (absolute URL ending in /tap) on the server `root`."""
    features = "".join(f"<feature><form>{g}</form></feature>" for g in GEOMETRY)
    formats = "".join(
        f"<outputFormat{' ivo-id=' + quoteattr(ivo) if ivo else ''}><mime>{escape(mime)}</mime>"
        + "".join(f"<alias>{a}</alias>" for a in aliases) + "</outputFormat>"
        for ivo, mime, aliases in OUTPUT_FORMATS)

    def vosi(standard: str, path: str) -> str:
        return (f'<capability standardID="ivo://ivoa.net/std/VOSI#{standard}">'
                f'<interface xsi:type="vs:ParamHTTP"><accessURL use="full">{escape(base)}/{path}</accessURL>'
                "</interface></capability>")

    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<vosi:capabilities xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0" {XSI} {VS} '
            'xmlns:tr="http://www.ivoa.net/xml/TAPRegExt/v1.0">'
            '<capability standardID="ivo://ivoa.net/std/TAP" xsi:type="tr:TableAccess">'
            '<interface xsi:type="vs:ParamHTTP" role="std" version="1.1">'
            f'<accessURL use="base">{escape(base)}</accessURL></interface>'
            '<language><name>ADQL</name><version ivo-id="ivo://ivoa.net/std/ADQL#v2.0">2.0</version>'
            "<description>ADQL 2.0 translated to PostgreSQL; geometry through q3c (ICRS only)</description>"
            f'<languageFeatures type="ivo://ivoa.net/std/TAPRegExt#features-adqlgeo">{features}</languageFeatures>'
            "</language>"
            f"{formats}{_uploads(config)}"
            f"<retentionPeriod><default>{config.retention_s}</default></retentionPeriod>"
            f"<executionDuration><default>{config.async_timeout_s}</default></executionDuration>"
            f'<outputLimit><default unit="row">{config.default_maxrec}</default>'
            f'<hard unit="row">{config.hard_maxrec}</hard></outputLimit>'
            f'<uploadLimit><hard unit="byte">{config.upload.max_bytes}</hard></uploadLimit>'
            "</capability>"
            + vosi("capabilities", "capabilities") + vosi("availability", "availability") + vosi("tables", "tables")
            + _other_services(root)
            + "</vosi:capabilities>\n")


def availability(up: bool, note: str) -> str:
    """The VOSI availability document."""
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<vosi:availability xmlns:vosi="http://www.ivoa.net/xml/VOSIAvailability/v1.0">'
            f"<vosi:available>{'true' if up else 'false'}</vosi:available><vosi:note>{escape(note)}</vosi:note>"
            "</vosi:availability>\n")


def _rows(conn: Connection, sql: str, **args) -> list[dict]:
    return [dict(r) for r in conn.execute(sa.text(sql), args).mappings()]


def _column_xml(c: dict, esa: bool) -> str:
    size = f" arraysize={quoteattr(c['arraysize'])}" if c["arraysize"] else ""
    flags = ("<flag>indexed</flag>" if c["indexed"] else "") + ("<flag>std</flag>" if c["std"] else "") \
        + ("<flag>principal</flag>" if c["principal"] else "")
    return (('<column esatapplus:flags="0">' if esa else "<column>") + _el("name", c["column_name"])
            + _el("description", c["description"]) + _el("unit", c["unit"])
            + _el("ucd", c["ucd"]) + _el("utype", c["utype"])
            + f'<dataType xsi:type="vs:VOTableType"{size}>{escape(c["datatype"])}</dataType>' + flags + "</column>")


def _table_xml(t: dict, columns: list[dict], keys: list[dict], key_columns: dict, esa: bool, tag: str = "table",
               ns: str = "") -> str:
    fks = "".join(
        "<foreignKey>" + _el("targetTable", k["target_table"])
        + "".join(f"<fkColumn>{_el('fromColumn', f)}{_el('targetColumn', g)}</fkColumn>"
                  for f, g in key_columns[k["key_id"]])
        + _el("description", k["description"]) + "</foreignKey>" for k in keys)
    return (f'<{tag}{ns} type={quoteattr(t["table_type"] or "table")}>' + _el("name", t["table_name"])
            + _el("description", t["description"]) + "".join(_column_xml(c, esa) for c in columns) + fks + f"</{tag}>")


def _metadata(conn: Connection, table: str | None = None):
    where = " where table_name = :t" if table else ""
    args = {"t": table} if table else {}
    tables = _rows(conn, f"select * from {PG_TAP_SCHEMA}.tables{where} order by table_index, table_name", **args)
    columns = defaultdict(list)
    for c in _rows(conn, f"select * from {PG_TAP_SCHEMA}.columns{where} order by column_index", **args):
        columns[c["table_name"]].append(c)
    keys = defaultdict(list)
    for k in _rows(conn, f"select * from {PG_TAP_SCHEMA}.keys"):
        keys[k["from_table"]].append(k)
    key_columns = defaultdict(list)
    for kc in _rows(conn, f"select * from {PG_TAP_SCHEMA}.key_columns"):
        key_columns[kc["key_id"]].append((kc["from_column"], kc["target_column"]))
    return tables, columns, keys, key_columns


def tableset(conn: Connection, detail: str = "max", esa: bool = False) -> str:
    """VOSI tables: every schema and table; columns and keys unless detail=min (esa: astroquery's attribute)."""
    schemas = _rows(conn, f"select * from {PG_TAP_SCHEMA}.schemas order by schema_index, schema_name")
    tables, columns, keys, key_columns = _metadata(conn)
    full = detail != "min"
    body = ""
    for s in schemas:
        body += "<schema>" + _el("name", s["schema_name"]) + _el("description", s["description"])
        for t in tables:
            if t["schema_name"] == s["schema_name"]:
                name = t["table_name"]
                body += _table_xml(t, columns[name] if full else [], keys[name] if full else [], key_columns, esa)
        body += "</schema>"
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<vosi:tableset xmlns:vosi="http://www.ivoa.net/xml/VOSITables/v1.0" {XSI} {VS}{" " + ESA if esa else ""}>'
            f"{body}</vosi:tableset>\n")


def table(conn: Connection, name: str, esa: bool = False) -> str | None:
    """VOSI tables for one table (its own document), or None when it is not published."""
    tables, columns, keys, key_columns = _metadata(conn, name)
    if not tables:
        return None
    t = tables[0]
    ns = f' xmlns:vosi="http://www.ivoa.net/xml/VOSITables/v1.0" {XSI} {VS}' + (f" {ESA}" if esa else "")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + _table_xml(t, columns[name], keys[name], key_columns, esa,
                                                                    "vosi:table", ns) + "\n"
