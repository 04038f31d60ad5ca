"""Spectra and labels streamed from the database into preallocated NumPy arrays."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from catalogdb.cnn import LABELS, N_PIXELS
from catalogdb.errors import CatalogdbError
from catalogdb.spectra import FLUX_DTYPE

FLUX_BYTES = 4 * N_PIXELS

TRAINING_SQL = f"""
select t.obsid, s.flux, {', '.join(f't.{c}' for c in LABELS)}, t.snrg,
       t.split = 'test' as is_test, coalesce(t.fold, -1) as fold
from training_set t join spectrum s using (obsid)
order by t.obsid
"""


@dataclass
class TrainingData:
    """The training_set view with its spectra, ordered by obsid."""

    obsid: np.ndarray  # int64 [n]
    flux: np.ndarray  # float32 [n, 4875]
    labels: np.ndarray  # float64 [n, 5], in LABELS order, physical units
    snrg: np.ndarray  # float64 [n]
    is_test: np.ndarray  # bool [n]
    fold: np.ndarray  # int8 [n]: 0..4 for reference rows, -1 for test rows

    def __len__(self) -> int:
        return len(self.obsid)

    def checksum(self) -> str:
        """SHA-256 over the sorted obsid, labels and split (what the model was trained and tested on)."""
        order = np.argsort(self.obsid, kind="stable")
        digest = hashlib.sha256()
        for array in (self.obsid[order].astype("<i8"), self.labels[order].astype("<f8"),
                      self.is_test[order].astype("u1"), self.fold[order].astype("i1")):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()


def iter_spectra(conn: Connection, sql: str, params: dict | None = None,
                 batch: int = 1000) -> Iterator[tuple[np.ndarray, list[np.ndarray]]]:
    """Stream `sql` (first column obsid, second flux) in batches: float32 [b, 4875] flux and the other columns.

    Columns after flux come back as NumPy arrays (object dtype where NumPy cannot infer better);
    memory stays at one batch whatever the number of rows.
    """
    # A cursor is planned for its first 10% of rows by default; with the training view's joins that
    # picked a nested loop 7x slower than a plain query (benchmarks/cnn.py). All rows are read here.
    conn.execute(sa.text("set local cursor_tuple_fraction = 1.0"))
    pg = conn.connection.driver_connection  # psycopg 3: named (server-side) binary cursor
    with pg.cursor(name="catalogdb_spectra", binary=True) as cur:
        cur.itersize = batch
        cur.execute(_pyformat(sql) if params else sql, params or None)
        while rows := cur.fetchmany(batch):
            flux = np.empty((len(rows), N_PIXELS), dtype=np.float32)
            for i, row in enumerate(rows):
                if len(row[1]) != FLUX_BYTES:
                    raise CatalogdbError(f"spectrum obsid {row[0]}: flux has {len(row[1])} bytes, "
                                         f"expected {FLUX_BYTES} ({N_PIXELS} float32 values)")
                flux[i] = np.frombuffer(row[1], dtype=FLUX_DTYPE)
            columns = list(zip(*rows, strict=True))
            yield flux, [np.asarray(columns[0])] + [np.asarray(c) for c in columns[2:]]


def read_spectra(conn: Connection, sql: str, params: dict | None = None, n_rows: int | None = None,
                 batch: int = 1000) -> tuple[np.ndarray, list[np.ndarray]]:
    """All rows of `sql` (first column obsid, second flux) into one preallocated float32 [n, 4875] array."""
    if n_rows is None:
        n_rows = conn.execute(sa.text(f"select count(*) from ({sql}) q"), params or {}).scalar_one()
    flux = np.empty((n_rows, N_PIXELS), dtype=np.float32)
    parts: list[list[np.ndarray]] = []
    i = 0
    for block, columns in iter_spectra(conn, sql, params, batch):
        if i + len(block) > n_rows:
            raise CatalogdbError("the spectra changed while they were read; run again")
        flux[i:i + len(block)] = block
        parts.append(columns)
        i += len(block)
    if i != n_rows:
        raise CatalogdbError(f"expected {n_rows} spectra, read {i}; did the spectra change while they were read?")
    return flux, [np.concatenate(c) for c in zip(*parts, strict=True)] if parts else []


def _pyformat(sql: str) -> str:
    """SQLAlchemy-style :name parameters to psycopg's %(name)s; literal % doubled."""
    import re

    sql = sql.replace("%", "%%")
    return re.sub(r"(?<![:\w]):([A-Za-z_]\w*)", r"%(\1)s", sql)


def load_training_data(engine: Engine) -> TrainingData:
    """Read the training_set view joined with spectrum, in one consistent snapshot."""
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        with conn.begin():
            n = conn.execute(sa.text("select count(*) from training_set t join spectrum s using (obsid)")).scalar_one()
            if n == 0:
                raise CatalogdbError("the training_set view is empty: ingest the surveys and spectra and run "
                                     "the crossmatches first (see `catalogdb db status`)")
            flux, cols = read_spectra(conn, TRAINING_SQL, n_rows=n)
    obsid = cols[0].astype(np.int64)
    labels = np.stack([cols[1 + k].astype(np.float64) for k in range(len(LABELS))], axis=1)
    snrg = cols[1 + len(LABELS)].astype(np.float64)
    is_test = cols[2 + len(LABELS)].astype(bool)
    fold = cols[3 + len(LABELS)].astype(np.int8)
    return TrainingData(obsid, flux, labels, snrg, is_test, fold)


# The photometry of a spectrum's best Gaia match, as train's test metrics and predict both use it for
# the distance: G (the LAMOST catalogue's Gaia G where the match lacks it), BP-RP and GSP-Phot's A_G.
PHOTOMETRY_COLUMNS = "coalesce(g.phot_g_mean_mag, l.gaia_g_mean_mag) AS g_mag, g.bp_rp, g.ag_gspphot"
PHOTOMETRY_JOINS = """JOIN lamost_star l ON l.obsid = {obsid}
LEFT JOIN xmatch_lamost_gaia xg ON xg.obsid = {obsid} AND xg.best
LEFT JOIN gaia_source g ON g.source_id = xg.source_id"""


def load_gaia_photometry(engine: Engine, obsid: np.ndarray) -> dict[str, np.ndarray]:
    """g_mag, bp_rp, ag_gspphot (PHOTOMETRY_COLUMNS) and r_med_geo of each obsid (NaN where missing)."""
    sql = sa.text(f"""
        select o.obsid, {PHOTOMETRY_COLUMNS}, d.r_med_geo
        from unnest(cast(:obsid as bigint[])) as o(obsid)
        {PHOTOMETRY_JOINS.format(obsid="o.obsid")}
        left join gaia_distance d on d.source_id = g.source_id
    """)
    names = ("g_mag", "bp_rp", "ag_gspphot", "r_med_geo")
    with engine.connect() as conn:
        rows = conn.execute(sql, {"obsid": [int(v) for v in obsid]}).all()
    found = {r[0]: r[1:] for r in rows}
    out = np.array([[np.nan if v is None else float(v) for v in found.get(int(o), (None,) * len(names))]
                    for o in obsid], dtype=np.float64).reshape(len(obsid), len(names))
    return {name: out[:, k] for k, name in enumerate(names)}
