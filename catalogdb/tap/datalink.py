"""DataLink 1.1 for the catalogue's spectra: /datalink/links?ID=<obsid> and the documents its links point to.

For a LAMOST obsid the {links} response lists:
- #this: the preprocessed spectrum (the CNN's input: wavelength grid, normalised flux, flag) as a VOTable
  and as a FITS table (/datalink/spectrum?ID=...&FORMAT=votable|fits);
- #progenitor: the original LAMOST file the spectrum was made from (/datalink/progenitor), its path and
  SHA-256 in the description;
- #auxiliary: the CNN model that predicted the published final_catalog row (/datalink/model, JSON).
An unknown or malformed ID gets an error row (NotFoundFault / UsageFault), never an HTTP error.

TAP and cone search results with a LAMOST obsid column carry a service descriptor (RESOURCE type="meta"
utype="adhoc:service") pointing here, so pyvo's iter_datalinks and TOPCAT's activation actions follow it.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np
import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from catalogdb.spectra import FLUX_DTYPE, GRID
from catalogdb.writers import Field, ResultStatus
from catalogdb.writers.votable import votable

STANDARD_ID = "ivo://ivoa.net/std/DataLink#links-1.1"
LINKS_TYPE = 'application/x-votable+xml;content=datalink'
OBSID_UCD = "meta.id;meta.main"
MAX_IDS = 1000
LINK_FIELDS = [
    Field("ID", "char", "*", ucd="meta.id;meta.main"),
    Field("access_url", "char", "*", ucd="meta.ref.url"),
    Field("service_def", "char", "*", ucd="meta.ref"),
    Field("error_message", "char", "*", ucd="meta.code.error"),
    Field("semantics", "char", "*", ucd="meta.code"),
    Field("description", "char", "*", ucd="meta.note"),
    Field("content_type", "char", "*", ucd="meta.code.mime"),
    Field("content_length", "long", unit="byte", ucd="phys.size;meta.file"),
    Field("content_qualifier", "char", "*", ucd="meta.code.class"),
    Field("local_semantics", "char", "*", ucd="meta.code"),
]


def base(root: str) -> str:
    """The DataLink URL prefix of the server whose base URL is `root`."""
    return f"{root.rstrip('/')}/datalink"


def descriptor(root: str | None, fields: list[Field]) -> tuple[list[Field], str]:
    """Fields with an ID on the obsid column, and the service descriptor RESOURCE ('' without an obsid)."""
    index = next((i for i, f in enumerate(fields) if f.name.lower() == "obsid" and f.ucd == OBSID_UCD), None)
    if root is None or index is None:
        return fields, ""
    fields = list(fields)
    f = fields[index]
    # The ID is the column's name: astropy names a column by its FIELD's ID, so any other ID would rename it.
    fields[index] = Field(f.name, f.datatype, f.arraysize, f.xtype, f.unit, f.ucd, f.description, id=f.name)
    xml = ('<RESOURCE type="meta" utype="adhoc:service" name="spectra">\n'
           "<DESCRIPTION>DataLink: the spectrum, original file and CNN model of each obsid</DESCRIPTION>\n"
           f'<PARAM name="standardID" datatype="char" arraysize="*" value="{STANDARD_ID}"/>\n'
           f'<PARAM name="accessURL" datatype="char" arraysize="*" value={quoteattr(base(root) + "/links")}/>\n'
           '<GROUP name="inputParams">\n'
           f'<PARAM name="ID" datatype="char" arraysize="*" ref={quoteattr(f.name)} ucd="meta.id;meta.main" '
           'value=""/>\n'
           "</GROUP>\n</RESOURCE>\n")
    return fields, xml


def _obsid(text: str) -> int | None:
    """The obsid of a DataLink ID: the number itself, or the query part of an IVOID (ivo://...?obsid)."""
    tail = text.strip().rsplit("?", 1)[-1]
    try:
        return int(tail)
    except ValueError:
        return None


def _ids(request: Request, form) -> list[str]:
    items = list(request.query_params.multi_items()) + list(form.multi_items() if form else [])
    return [v for k, v in items if k.upper() == "ID" and isinstance(v, str)]


def _fault(id_text: str, message: str) -> tuple:
    """An error row: semantics #this (DataLink 1.1 wants one in every row) and the message."""
    return (id_text, None, None, message, "#this") + (None,) * 5


def _link_rows(engine: sa.Engine, prefix: str, ids: list[str]) -> list[tuple]:
    obsids = {i: _obsid(i) for i in ids}
    with engine.connect() as conn:
        found = {r.obsid: r for r in conn.execute(sa.text(
            "select s.obsid, s.path, s.checksum, s.flag, f.model_id from spectrum s "
            "left join final_catalog f on f.obsid = s.obsid where s.obsid = any(:ids)"),
            {"ids": [o for o in obsids.values() if o is not None]})}
    rows = []
    for text, obsid in obsids.items():
        row = found.get(obsid)
        if obsid is None:
            rows.append(_fault(text, f"UsageFault: ID {text!r} is not a LAMOST obsid"))
            continue
        if row is None:
            rows.append(_fault(text, f"NotFoundFault: no spectrum with obsid {obsid}"))
            continue
        spec = f"{prefix}/spectrum?ID={obsid}"
        rows.append((text, f"{spec}&FORMAT=votable", None, None, "#this",
                     f"Preprocessed spectrum of obsid {obsid} (normalised flux on 3925-8799 A, flag {row.flag})",
                     "application/x-votable+xml", None, "#spectrum", "spectrum-votable"))
        rows.append((text, f"{spec}&FORMAT=fits", None, None, "#this",
                     f"Preprocessed spectrum of obsid {obsid} as a FITS table", "application/fits", None,
                     "#spectrum", "spectrum-fits"))
        rows.append((text, f"{prefix}/progenitor?ID={obsid}", None, None, "#progenitor",
                     f"Original LAMOST file {row.path} (SHA-256 {row.checksum})", "application/fits", None,
                     None, f"sha256:{row.checksum}"))
        if row.model_id is not None:
            rows.append((text, f"{prefix}/model?ID={row.model_id}", None, None, "#auxiliary",
                         f"CNN model {row.model_id} that predicted the final_catalog row", "application/json",
                         None, None, "model"))
    return rows


async def links(request: Request) -> Response:
    """{links}: the DataLink VOTable for every ID given."""
    form = await request.form() if request.method == "POST" else None
    ids = _ids(request, form)
    fmt = (request.query_params.get("RESPONSEFORMAT") or "").strip()
    if fmt and fmt.lower() not in ("votable", "application/x-votable+xml", LINKS_TYPE):
        rows = [_fault(i, f"UsageFault: RESPONSEFORMAT={fmt} is not supported (votable)") for i in ids or [""]]
    elif not ids:
        rows = [_fault("", "UsageFault: ID is required")]
    elif len(ids) > MAX_IDS:
        rows = [_fault(i, f"UsageFault: at most {MAX_IDS} IDs per request") for i in ids]
    else:
        engine = request.app.state.service.owner
        rows = await run_in_threadpool(_link_rows, engine, base(str(request.base_url)), ids)
    body = b"".join(votable(LINK_FIELDS, [rows], ResultStatus()))
    return Response(body, media_type=LINKS_TYPE)


def _spectrum(engine: sa.Engine, obsid: int):
    with engine.connect() as conn:
        return conn.execute(sa.text("select obsid, flux, flag, path, checksum from spectrum where obsid = :o"),
                            {"o": obsid}).first()


def spectrum_votable(obsid: int, flux: np.ndarray, flag: int) -> bytes:
    """The spectrum as a VOTable (BINARY2, so every float32 arrives exactly)."""
    from astropy.io.votable.tree import Field as VField
    from astropy.io.votable.tree import Param, Resource, TableElement, VOTableFile

    vot = VOTableFile()
    resource = Resource()
    vot.resources.append(resource)
    table = TableElement(vot, name=f"spectrum_{obsid}")
    resource.tables.append(table)
    table.params.extend([
        Param(vot, name="obsid", datatype="long", value=obsid, ucd="meta.id;meta.main"),
        Param(vot, name="flag", datatype="short", value=flag, ucd="meta.code.qual"),
    ])
    table.fields.extend([
        VField(vot, name="wavelength", datatype="double", unit="0.1nm", ucd="em.wl"),
        VField(vot, name="flux", datatype="float", ucd="phot.flux.density;arith.ratio"),
    ])
    table.create_arrays(len(GRID))
    table.array["wavelength"] = GRID
    table.array["flux"] = flux
    buf = io.BytesIO()
    vot.to_xml(buf, tabledata_format="binary2")
    return buf.getvalue()


def spectrum_fits(obsid: int, flux: np.ndarray, flag: int) -> bytes:
    """The spectrum as a FITS binary table (WAVELENGTH, FLUX), obsid and flag in the header."""
    from astropy.io import fits

    hdu = fits.BinTableHDU.from_columns([
        fits.Column(name="WAVELENGTH", format="D", unit="Angstrom", array=GRID),
        fits.Column(name="FLUX", format="E", array=flux)], name="SPECTRUM")
    hdu.header["OBSID"] = (obsid, "LAMOST spectrum identifier")
    hdu.header["FLAG"] = (flag, "1: pixels outside [0.1, 1.2] set to 1.0")
    buf = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(buf)
    return buf.getvalue()


def _not_found(message: str, status: int = 404) -> Response:
    return Response(message + "\n", status_code=status, media_type="text/plain")


async def spectrum(request: Request) -> Response:
    """The preprocessed spectrum of an obsid, FORMAT=votable (default) or fits."""
    obsid = _obsid(request.query_params.get("ID", ""))
    fmt = request.query_params.get("FORMAT", "votable").lower()
    if obsid is None:
        return _not_found("ID must be a LAMOST obsid", 400)
    if fmt not in ("votable", "fits"):
        return _not_found("FORMAT must be votable or fits", 400)
    row = await run_in_threadpool(_spectrum, request.app.state.service.owner, obsid)
    if row is None:
        return _not_found(f"no spectrum with obsid {obsid}")
    flux = np.frombuffer(bytes(row.flux), dtype=FLUX_DTYPE)
    if len(flux) != len(GRID):
        return _not_found(f"the stored spectrum of obsid {obsid} has {len(flux)} pixels, not {len(GRID)}", 500)
    if fmt == "fits":
        return Response(spectrum_fits(obsid, flux, row.flag), media_type="application/fits")
    return Response(spectrum_votable(obsid, flux, row.flag), media_type="application/x-votable+xml")


async def progenitor(request: Request) -> Response:
    """The original LAMOST file of an obsid, where the server still has it."""
    obsid = _obsid(request.query_params.get("ID", ""))
    if obsid is None:
        return _not_found("ID must be a LAMOST obsid", 400)
    row = await run_in_threadpool(_spectrum, request.app.state.service.owner, obsid)
    if row is None:
        return _not_found(f"no spectrum with obsid {obsid}")
    path = Path(row.path)
    if not path.is_absolute() or not path.is_file():
        return _not_found(f"the original file {row.path} (SHA-256 {row.checksum}) is not on this server")
    return FileResponse(path, media_type="application/fits", filename=path.name)


async def model(request: Request) -> Response:
    """The CNN model record (configuration, training rows, metrics) as JSON."""
    model_id = request.query_params.get("ID", "")

    def read():
        with request.app.state.service.owner.connect() as conn:
            return conn.execute(sa.text(
                "select model_id, created_at, config, training_rows, training_checksum, code_version, metrics, "
                "sigma_mg, run_id from cnn_model where model_id = :m"), {"m": model_id}).mappings().first()

    row = await run_in_threadpool(read)
    if row is None:
        return _not_found(f"no model {model_id!r}")
    return Response(json.dumps(dict(row), default=str), media_type="application/json")


def routes() -> list[Route]:
    """The DataLink routes, mounted at /datalink."""
    return [Route("/datalink/links", links, methods=["GET", "POST"]), Route("/datalink/spectrum", spectrum),
            Route("/datalink/progenitor", progenitor), Route("/datalink/model", model)]
