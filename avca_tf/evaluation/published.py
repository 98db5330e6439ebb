"""The numbers the seed publishes (percent, test split), for side-by-side tables.

Source: supplementary material of the AVCA paper: Table 1 (cls
features), Table 3 (ablation towards AVGZSLNet, main/SeLaVi features),
Table 4 (training with one modality, main features) and Appendix B.4
(parameters and GFLOPS). The `tcaf` rows of Tables 1, 3 and 4 are TCaF's own
published results (Mercea et al., "Temporal and cross-modal attention for
audio-visual zero-shot learning", ECCV 2022, Table 1; TCAF), not numbers of the
seed paper. The "clipclap" table holds ClipClap-GZSL's published results
(Kurzendörfer et al., "Audio-visual generalized zero-shot learning using
pre-trained large multi-modal models", CVPR 2024 workshops) and the comparison
rows of that paper, trained on the same CLIP/CLAP features, for which only HM and
ZSL are published (README of dkurzend/ClipClap-GZSL at 56b8e1b9).
"""

DATASETS = ("VGGSound", "UCF", "ActivityNet")

# Table 1, cls features: model -> dataset -> (S, U, HM, ZSL)
TABLE1 = {
    "ale": {"VGGSound": (26.13, 1.72, 3.23, 4.97), "UCF": (45.42, 29.09, 35.47, 32.30),
            "ActivityNet": (0.89, 6.16, 1.55, 6.16)},
    "sje": {"VGGSound": (16.94, 2.72, 4.69, 3.22), "UCF": (19.39, 32.47, 24.28, 32.47),
            "ActivityNet": (37.92, 1.22, 2.35, 4.35)},
    "devise": {"VGGSound": (29.96, 1.94, 3.64, 4.72), "UCF": (29.58, 34.80, 31.98, 35.48),
               "ActivityNet": (0.17, 5.84, 0.33, 5.84)},
    "apn": {"VGGSound": (6.46, 6.13, 6.29, 6.50), "UCF": (13.54, 28.44, 18.35, 29.69),
            "ActivityNet": (3.79, 3.39, 3.58, 3.97)},
    "cjme": {"VGGSound": (10.86, 2.22, 3.68, 3.72), "UCF": (33.89, 24.82, 28.65, 29.01),
             "ActivityNet": (10.75, 5.55, 7.32, 6.29)},
    "avgzslnet": {"VGGSound": (15.02, 3.19, 5.26, 4.81), "UCF": (74.79, 24.15, 36.51, 31.51),
                  "ActivityNet": (13.70, 5.96, 8.30, 6.39)},
    "avca": {"VGGSound": (12.63, 6.19, 8.31, 6.91), "UCF": (63.15, 30.72, 41.34, 37.72),
             "ActivityNet": (16.77, 7.04, 9.92, 7.58)},
}

# Table 3, main features: model -> dataset -> (HM, ZSL)
TABLE3 = {
    "avgzslnet": {"VGGSound": (5.83, 5.28), "UCF": (18.05, 13.65), "ActivityNet": (6.44, 5.40)},
    "avca-no-xatt": {"VGGSound": (6.02, 4.81), "UCF": (26.82, 18.37), "ActivityNet": (6.50, 5.64)},
    "avca-xatt-lc": {"VGGSound": (4.88, 4.55), "UCF": (19.38, 12.95), "ActivityNet": (11.58, 8.40)},
    "avca": {"VGGSound": (6.31, 6.00), "UCF": (27.15, 20.01), "ActivityNet": (12.13, 9.13)},
}

# Table 4, main features: model -> dataset -> (S, U, HM)
TABLE4 = {
    "avca-visual": {"VGGSound": (7.02, 3.68, 4.83), "UCF": (50.18, 13.21, 20.92),
                    "ActivityNet": (11.80, 5.53, 7.53)},
    "avca-audio": {"VGGSound": (7.74, 2.55, 3.84), "UCF": (12.99, 10.78, 11.78),
                   "ActivityNet": (4.56, 3.87, 4.19)},
    "avca": {"VGGSound": (14.90, 4.00, 6.31), "UCF": (51.53, 18.43, 27.15),
             "ActivityNet": (24.86, 8.02, 12.13)},
}

# TCaF paper, Table 1: feature set -> dataset -> (S, U, HM, ZSL); its rows in Tables 1, 3, 4
TCAF = {
    "cls_features": {"VGGSound": (12.63, 6.72, 8.77, 7.41), "UCF": (67.14, 40.83, 50.78, 44.64),
                     "ActivityNet": (30.12, 7.65, 12.20, 7.96)},
    "main_features": {"VGGSound": (9.64, 5.91, 7.33, 6.06), "UCF": (58.60, 21.74, 31.72, 24.81),
                      "ActivityNet": (18.70, 7.50, 10.71, 7.91)},
}
_ALL = ("S", "U", "HM", "ZSL")


def _tcaf_row(feature_set: str, metrics: tuple) -> dict:
    return {ds: tuple(v[_ALL.index(m)] for m in metrics) for ds, v in TCAF[feature_set].items()}


TABLE1["tcaf"] = _tcaf_row("cls_features", ("S", "U", "HM", "ZSL"))
TABLE3["tcaf"] = _tcaf_row("main_features", ("HM", "ZSL"))
TABLE4["tcaf"] = _tcaf_row("main_features", ("S", "U", "HM"))
# rows whose numbers are not the seed paper's: model -> source
ROW_SOURCES = {"tcaf": "TCaF (ECCV 2022), Table 1"}

# ClipClap-GZSL, CLIP/CLAP features (feature set clip_clap): model -> dataset ->
# (S, U, HM, ZSL); None: not published (the comparison rows publish HM and ZSL only).
CLIPCLAP = {
    "clipclap": {"VGGSound": (29.68, 11.12, 16.18, 11.53), "UCF": (77.14, 43.91, 55.97, 46.96),
                 "ActivityNet": (45.98, 20.06, 27.93, 22.76)},
    "avca": {"VGGSound": (None, None, 11.26, 8.16), "UCF": (None, None, 36.69, 38.67),
             "ActivityNet": (None, None, 21.76, 20.88)},
    "avgzslnet": {"VGGSound": (None, None, 4.71, 5.44), "UCF": (None, None, 42.67, 35.66),
                  "ActivityNet": (None, None, 12.70, 12.39)},
    "cjme": {"VGGSound": (None, None, 7.45, 6.84), "UCF": (None, None, 25.87, 20.46),
             "ActivityNet": (None, None, 11.64, 9.92)},
}

# Appendix B.4 (SeLaVi features): trainable parameters and GFLOPS as printed.
PARAMS_AS_PRINTED = {"avca": "1.69M", "avgzslnet": "1.32M", "ale": "307.2k", "sje": "307.2k",
                     "devise": "307.2k"}
GFLOPS = {"avca": 2.36, "avgzslnet": 1.38, "ale": 0.32, "sje": 0.32, "devise": 0.32}


# How each table is laid out: its feature set, its models (row order, seed's
# row names) and the metrics of each dataset column; tables of other papers also
# name it (`paper`, the bracketed numbers) and their heading (`title`).
TABLES = {
    1: {"feature_set": "cls_features", "published": TABLE1, "metrics": ("S", "U", "HM", "ZSL"),
        "rows": (("ale", "ALE"), ("sje", "SJE"), ("devise", "DEVISE"), ("apn", "APN"),
                 ("cjme", "CJME"), ("avgzslnet", "AVGZSLNet"), ("avca", "AVCA"),
                 ("tcaf", "TCaF"))},
    3: {"feature_set": "main_features", "published": TABLE3, "metrics": ("HM", "ZSL"),
        "rows": (("avgzslnet", "AVGZSLNet"), ("avca-no-xatt", "W/o x-att"),
                 ("avca-xatt-lc", "W x-att with l_c loss"), ("avca", "AVCA"),
                 ("tcaf", "TCaF"))},
    4: {"feature_set": "main_features", "published": TABLE4, "metrics": ("S", "U", "HM"),
        "rows": (("avca-visual", "Visual branch"), ("avca-audio", "Audio branch"),
                 ("avca", "AVCA"), ("tcaf", "TCaF"))},
    "clipclap": {"feature_set": "clip_clap", "published": CLIPCLAP,
                 "metrics": ("S", "U", "HM", "ZSL"),
                 "title": "ClipClap-GZSL (CVPR 2024 workshops) on CLIP/CLAP features",
                 "paper": "ClipClap-GZSL paper's number (comparison rows: HM and ZSL only, "
                          "n/p = not published)",
                 "rows": (("cjme", "CJME"), ("avgzslnet", "AVGZSLNet"), ("avca", "AVCA"),
                          ("clipclap", "ClipClap-GZSL"))},
}
TABLE_CHOICES = tuple(str(t) for t in TABLES)   # `avca reproduce --table`


def table_key(value):
    """A --table value as a TABLES key: "1" -> 1, "clipclap" -> "clipclap"."""
    text = str(value)
    return int(text) if text.isdigit() else text
