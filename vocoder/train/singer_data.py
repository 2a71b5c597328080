"""The ``singer`` object of docs/features.md, built from a corpus's features and phoneme timings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def build_singer_data(items, hop=80, sample_rate=16000, n_env=24, pitch_range=None) -> dict:
    """``items``: ``(features [frames, 2+n_env], phones [[ARPAbet, start_s, end_s], ...])`` pairs.

    Per phoneme: median envelope over the middle half of each occurrence's frames,
    fraction of voiced frames, median duration. ``pitch_range`` defaults to the 2nd..98th
    percentile of the voiced f0, rounded to whole notes; ``level`` is the median mean
    envelope over voiced frames.
    """
    fps = sample_rate / hop
    mids, voic, durs = {}, {}, {}
    voiced_f0, voiced_level = [], []
    for f, phones in items:
        f = np.asarray(f, np.float64)
        v = f[:, 1] > 0.5
        voiced_f0.append(f[v, 0])
        voiced_level.append(f[v, 2:2 + n_env].mean(axis=1))
        for p, s, e in phones:
            a, b = int(round(s * fps)), int(round(e * fps))
            a, b = max(0, a), min(f.shape[0], b)
            if b <= a:
                continue
            q = (b - a) // 4
            mids.setdefault(p, []).append(f[a + q:b - q if b - q > a + q else b, 2:2 + n_env])
            voic.setdefault(p, []).append(f[a:b, 1])
            durs.setdefault(p, []).append(e - s)
    phonemes = sorted(mids)
    f0 = np.concatenate(voiced_f0) if voiced_f0 else np.zeros(0)
    if pitch_range is None:
        pitch_range = [int(np.floor(np.percentile(f0, 2))), int(np.ceil(np.percentile(f0, 98)))] if f0.size \
            else [48, 66]
    lev = np.concatenate(voiced_level) if voiced_level else np.zeros(0)
    return {
        "version": 1,
        "n_env": n_env,
        "phonemes": phonemes,
        "envelopes": [[round(float(x), 4) for x in np.median(np.concatenate(mids[p]), axis=0)] for p in phonemes],
        "voicing": [round(float(np.concatenate(voic[p]).mean()), 4) for p in phonemes],
        "durations": [round(float(np.median(durs[p])), 4) for p in phonemes],
        "pitch_range": [int(pitch_range[0]), int(pitch_range[1])],
        "level": round(float(np.median(lev)), 4) if lev.size else 0.0,
    }


def singer_data_from_corpus(corpus_dir, split="train", sources=("festival-kal", "fluidr3-oohs"),
                            pitch_sources=("festival-kal",)) -> dict:
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
