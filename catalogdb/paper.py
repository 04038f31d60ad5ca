"""The numbers of Shen & Luo (A&A 2024) that catalogdb reports beside its own, declared once.

These are the paper's results, for comparison. The selections themselves (the solar-like cut, the training
cuts, the gradient bins) live in the database, in the migrations' SQL, where the views apply them.
"""

from __future__ import annotations

DOI_MODEL = "10.5281/zenodo.13748129"  # the authors' published network (SolarDis)

# Table 2: the training-set cut-flow, by stage of the training_cutflow view.
CUTFLOW = {1: 7_060_679, 2: 4_067_525, 3: 54_971, 4: 47_557, 5: 44_593, 6: 39_416, 7: 18_573}
TRAINING_ROWS = CUTFLOW[7]
REFERENCE_ROWS, TEST_ROWS = 14_858, 3_715  # the 8:2 split of the training set

# Sect. 4.1 and Fig. 8: the targets and the Venn regions of their reasons.
TARGETS = 521_455
TARGETS_PREPROCESSED = 521_424
TARGET_VENN = {"no parallax": 54_941, "parallax_over_error <= 5": 265_276, "no GSP-Phot distance": 323_451,
               "GSP-Phot distance but no parallax": 9_449}

# Sect. 3: test-set scatter per label (S/N_g > 10) and the distance against r_med_geo.
TEST_SCATTER = {"teff": 86.0, "logg": 0.07, "feh": 0.06, "mg": 0.25, "bprp0": 0.03}
DISTANCE_MEDIAN_FRACTION = 0.037
DISTANCE_STD_FRACTION = 0.082
DISTANCE_SCATTER_PC = 65
SIGMA_MG = 0.2546  # sigma_M of Eq. 4 in the authors' model: the test-set scatter of M_G (mag)

# Sect. 4.4, Tables 3 and 4: slope (dex/kpc) by bin centre (kpc).
RADIAL_GRADIENT = dict(zip([0.1, 0.3, 0.5, 0.7, 0.9, 1.1, 1.3, 1.5, 1.7, 1.9],
                           [-0.054, -0.040, -0.030, -0.022, -0.011, 0.000, 0.003, 0.004, 0.005, 0.008], strict=True))
VERTICAL_GRADIENT = dict(zip([7.5, 8.5, 9.5, 10.5, 11.5, 12.5, 13.5],
                             [-0.263, -0.237, -0.163, -0.098, -0.078, -0.065, -0.069], strict=True))
GRADIENT_SAMPLE = 458_061  # stars with 7 <= R <= 14 kpc and |Z| <= 2 kpc

# Table C.1: test MSE per label (teff, logg, feh, mg, bprp0) and the weighted mean MSE, per AutoGluon model.
TABLE_C1: dict[str, tuple[float, float, float, float, float, float]] = {
    "CNN": (7390, 0.00497, 0.00318, 0.0649, 0.00117, 0.0685),
    "LightGBMXT": (7653, 0.00409, 0.00236, 0.0531, 0.0011, 0.0606),
    "LightGBM": (7803, 0.00409, 0.00259, 0.0558, 0.00108, 0.0619),
    "LightGBMLarge": (7815, 0.0045, 0.0033, 0.0539, 0.00109, 0.0648),
    "CatBoost": (7925, 0.00401, 0.0023, 0.0536, 0.00117, 0.0618),
    "NeuralNetFastAI": (8671, 0.00438, 0.00165, 0.0615, 0.00136, 0.0668),
    "NeuralNetTorch": (8313, 0.00561, 0.00323, 0.0672, 0.00158, 0.0782),
    "ExtraTreesMSE": (8470, 0.00628, 0.0051, 0.0607, 0.00128, 0.0803),
    "RandomForestMSE": (8523, 0.00586, 0.00568, 0.0614, 0.00123, 0.0804),
    "KNeighborsUnif": (12530, 0.01385, 0.02056, 0.1644, 0.00212, 0.1891),
    "KNeighborsDist": (12607, 0.01377, 0.02015, 0.1635, 0.00211, 0.1875),
}

# Sect. 4.2, Fig. 11: distances against StarHorse, DistMass and astroNN, by panel: (N, scatter pc, mean
# fractional difference).
DISTANCE_COMPARISON = {1: (5443, 123, 0.07), 2: (5240, 165, -0.04), 3: (5648, 117, -0.04),
                       4: (4401, 157, 0.152), 5: (4788, 90, 0.094), 6: (5242, 118, 0.038)}
# Sect. 4.3: parameter scatter against APOGEE DR17 and GALAH DR3, and the stars compared.
PARAMETER_COMPARISON = {("APOGEE DR17", "teff"): 121, ("APOGEE DR17", "logg"): 0.12, ("APOGEE DR17", "feh"): 0.06,
                        ("GALAH DR3", "teff"): 97, ("GALAH DR3", "logg"): 0.14, ("GALAH DR3", "feh"): 0.13}
PARAMETER_COMPARISON_N = {"APOGEE DR17": 2677, "GALAH DR3": 2218}

SHAP_STARS = 2000  # Sect. 3.3: the stars whose SHAP values the paper shows
