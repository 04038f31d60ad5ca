"""The mock survey: a simulated galaxy written as real LAMOST, Gaia, Bailer-Jones and APOGEE files.

`write_survey(out, stars, seed, spectra)` places `stars` LAMOST targets in a thin + thick disk with the
paper's metallicity gradients (Tables 3 and 4) as truth, derives their photometry, Gaia astrometry,
Bailer-Jones distances, LASP and ASPCAP labels and spectra, and writes them in the surveys' own file
formats beside `truth.parquet` and `truth.json`. The modules hold the physics: `galaxy` (disk, [Fe/H]
field, dust), `stars` (parameters, M_G, colours), `gaia`, `lamost`, `apogee`, `spectra` and `write`.
Everything is deterministic by seed; nothing needs a database or a download.
"""

from catalogdb.mock.files import CATALOGUE_FILES, GAIA_HATS, SPECTRA_DIR
from catalogdb.mock.write import SPECTRA_MODES, default_apogee_fraction, write_survey

__all__ = ["CATALOGUE_FILES", "GAIA_HATS", "SPECTRA_DIR", "SPECTRA_MODES", "default_apogee_fraction", "write_survey"]
