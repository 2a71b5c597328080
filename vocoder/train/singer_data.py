"""The ``singer`` object of docs/features.md, built from a corpus's features and phoneme timings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..singer import build_singer_data  # the one version (2nd..98th percentile pitch range)


def singer_data_from_corpus(
    corpus_dir, split="train", sources=("festival-kal", "fluidr3-oohs"), pitch_sources=("festival-kal",)
) -> dict:
    """Singer data of a corpus split (items with phoneme timings). The pitch range comes
    from ``pitch_sources`` only (Festival's reliable range; the oohs only cover one vowel)."""
    d = Path(corpus_dir) / split
    items, pitch_items = [], []
    n_env = None
    man = Path(corpus_dir) / "corpus.json"
    hop, sr = 80, 16000
    if man.exists():
        m = json.loads(man.read_text())
        hop, sr = m.get("hop", 80), m.get("sample_rate", 16000)
    for j in sorted(d.glob("*.json")):
        meta = json.loads(j.read_text())
        if sources and meta.get("source") not in sources or not meta.get("phones"):
            continue
        npy = d / f"{j.stem}.npy"
        if not npy.exists():
            continue
        f = np.load(npy, allow_pickle=False)
        n_env = f.shape[1] - 2
        phones = meta["phones"]
        if meta.get("source") == "fluidr3-oohs":  # the gaps between oohs ring on: not silence
            phones = [p for p in phones if p[0] != "sil"]
        items.append((f, phones))
        if meta.get("source") in pitch_sources:
            pitch_items.append(f)
    if not items:
        return {}
    pr = None
    if pitch_items:
        f0 = np.concatenate([f[f[:, 1] > 0.5, 0] for f in pitch_items])
        if f0.size:
            pr = [int(np.floor(np.percentile(f0, 2))), int(np.ceil(np.percentile(f0, 98)))]
    return build_singer_data(items, hop=hop, sample_rate=sr, n_env=n_env, pitch_range=pr)
