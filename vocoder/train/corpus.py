"""Build a training corpus: WAVs (mono float, the preset's rate) + features + phoneme timings.

Layout of ``OUTDIR``::

    corpus.json            manifest: sources, licences, sample rate, hop, files, seconds
    train/NAME.wav         16 kHz mono float WAV
    train/NAME.npy         features (vocoder.train.features.extract), float32 [frames, 2 + n_env]
    train/NAME.json        {"phones": [[ARPAbet, start_s, end_s], ...], "source": ...}
    heldout/...            the same, for evaluation (never trained on)

Sources:

* ``--festival``: Festival's singing mode with the CMU kal diphone voice (real male
  diphones, LPC + residual resynthesis) over notes C3..F#4 (MIDI 48..66; Festival crashes at
  C5 and above and gets octave errors from G#4), many one-syllable words and tempos.
  Festival prints the segment timings, which are kept (mapped to ARPAbet).
* ``--oohs``: FluidR3 GM 'Voice Oohs' (program 53) rendered with fluidsynth, notes up to C5.
* ``--wav-dir DIR``: a user's own recordings (any rate; resampled). No phoneme timings.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from . import features as feat

SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
FESTIVAL_SGML_DIR = "/usr/share/sgml/festival"

LICENCES = {
    "festival-kal": (
        "Festival speech synthesis system (CSTR, University of Edinburgh) with the CMU kal diphone "
        "voice (Alan W Black and Kevin Lenzo, 1998): free licence, use and distribution permitted "
        "keeping the copyright notice and authors' names; changes must be marked. This corpus is "
        "a modification: singing-mode renderings, resampled analysis, used as training data."
    ),
    "fluidr3-oohs": "FluidR3 GM soundfont 'Voice Oohs' (Frank Wen): MIT licence.",
    "user": "user recordings: licence of their owner",
}

#: Festival's radio phone set (what kal prints) -> ARPAbet (cmudict, no stress) + sil.
RADIO_TO_ARPABET = {
    "pau": "sil",
    "h#": "sil",
    "#": "sil",
    "brth": "sil",
    "ax": "AH",
    "axr": "ER",
    "ix": "IH",
    "el": "L",
    "em": "M",
    "en": "N",
    "nx": "N",
    "dx": "D",
    "hh": "HH",
    "h": "HH",
}
# fmt: off
ARPABET = ["AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH", "IH",
           "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH", "UW", "V",
           "W", "Y", "Z", "ZH"]
# fmt: on


def to_arpabet(phone: str) -> str:
    p = phone.strip().lower()
    if p in RADIO_TO_ARPABET:
        return RADIO_TO_ARPABET[p]
    u = p.upper().rstrip("012")
    return u if u in ARPABET else "sil"


# One-syllable words with varied onsets, vowels and codas (Festival's lexicon knows them).
WORDS = """
lah la lee loo low lay lie law lou me may my moo mow more mine moon night no new near nine
day dee do doe die dawn deep door bay bee boo bow buy ball bar bird tea too toe tie time tone
two key coo go gay guy gone good far fee few foe fine fall sea see sue so sigh saw soon sing
song shoe show shy shine she ray ree rue row rye rain rose read way we woo woe why wine wave
you yes yawn year hey he who hoe high home hold heart zoo zone thee they though then vow vine
view veil joy jay jaw chew chair cheer thing think thaw there air all ah oh eye ear ooh aye
love heart light star dream kind blue green free soul time calm warm cold old earth dark hum
""".split()

NOTE_NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]


def festival_note(midi: int) -> str:
    """Festival's note name (A5 = 440, one octave above MIDI's numbering)."""
    return f"{NOTE_NAMES[midi % 12]}{midi // 12}"  # MIDI 60 -> "C5"


def _song_xml(rng: random.Random, lo: int, hi: int, n_notes: int) -> str:
    bpm = rng.choice([50, 60, 70, 80, 90, 100, 110, 120])
    note = rng.randint(lo, hi)
    items = []
    for _ in range(n_notes):
        # Mostly steps and small leaps, like a melody.
        note = min(hi, max(lo, note + rng.choice([-5, -3, -2, -1, 0, 1, 2, 3, 4, 7, -7])))
        beats = rng.choice([0.5, 0.75, 1, 1, 1.5, 2, 3])
        word = rng.choice(WORDS)
        if rng.random() < 0.3:  # detuned note: f0 off the semitone grid
            hz = 440.0 * 2 ** ((note + rng.uniform(-0.5, 0.5) - 69) / 12)
            items.append(f'<PITCH FREQ="{hz:.2f}"><DURATION BEATS="{beats}">{word}</DURATION></PITCH>')
        else:
            items.append(f'<PITCH NOTE="{festival_note(note)}"><DURATION BEATS="{beats}">{word}</DURATION></PITCH>')
    return (
        '<?xml version="1.0"?>\n<!DOCTYPE SINGING PUBLIC "-//SINGING//DTD SINGING mark up//EN" '
        '"Singing.v0_1.dtd" []>\n'
        f'<SINGING BPM="{bpm}">\n' + "\n".join(items) + "\n</SINGING>\n"
    )


_FESTIVAL_SCRIPT = """
(voice_kal_diphone)
(define (vocoder_save utt)
  (mapcar (lambda (s) (format t "SEG %s %f\\n" (item.name s) (item.feat s 'end)))
          (utt.relation.items utt 'Segment))
  (utt.save.wave utt "{wav}" 'riff)
  utt)
(set! tts_hooks (list utt.synth vocoder_save))
(tts_file "{xml}" 'singing)
"""


def render_festival_song(xml: str, wav_path: str, timeout: float = 120.0) -> list:
    """Render one singing XML with Festival (kal); return ``[[phone, start, end], ...]``
    in Festival's phone names. Raises RuntimeError if Festival fails."""
    with tempfile.TemporaryDirectory() as tmp:
        xp = os.path.join(tmp, "song.xml")
        sp = os.path.join(tmp, "run.scm")
        with open(xp, "w") as f:
            f.write(xml)
        with open(sp, "w") as f:
            f.write(_FESTIVAL_SCRIPT.format(wav=wav_path, xml=xp))
        r = subprocess.run(
            ["festival", "-b", sp], cwd=FESTIVAL_SGML_DIR, capture_output=True, text=True, timeout=timeout
        )
    segs: list[tuple[str, float]] = []
    for line in r.stdout.splitlines():
        if line.startswith("SEG "):
            _, name, end_s = line.split()
            segs.append((name, float(end_s)))
    if r.returncode != 0 or not segs or not os.path.exists(wav_path):
        raise RuntimeError(f"festival failed (rc {r.returncode}): {r.stderr[-500:]}")
    out, start = [], 0.0
    for name, end in segs:
        if end > start:
            out.append([name, start, end])
        start = max(start, end)
    return out


def _write_item(outdir: Path, name: str, audio: np.ndarray, sr: int, phones, source: str, hop: int, n_env: int):
    import soundfile

    audio = np.asarray(audio, np.float64)
    peak = np.max(np.abs(audio))
    if peak > 0.99:
        audio = audio * (0.99 / peak)
    soundfile.write(str(outdir / f"{name}.wav"), audio.astype(np.float32), sr, subtype="FLOAT")
    f = feat.extract(audio, sr, hop=hop, n_env=n_env, source=name)
    np.save(outdir / f"{name}.npy", f)
    with open(outdir / f"{name}.json", "w") as fh:
        json.dump({"source": source, "seconds": len(audio) / sr, "phones": phones}, fh)
    return len(audio) / sr


def _festival_job(args):
    outdir, name, seed, lo, hi, n_notes, sr, hop, n_env = args
    rng = random.Random(seed)
    xml = _song_xml(rng, lo, hi, n_notes)
    outdir = Path(outdir)
    wav_tmp = str(outdir / f".{name}.festival.wav")
    try:
        segs = render_festival_song(xml, wav_tmp)
        audio, fsr = feat.read_wav(wav_tmp)
    except Exception as e:
        return name, 0.0, f"{type(e).__name__}: {e}"
    finally:
        if os.path.exists(wav_tmp):
            os.unlink(wav_tmp)
    audio = feat.resample(audio, fsr, sr)
    phones = [[to_arpabet(p), s, e] for p, s, e in segs]
    try:
        secs = _write_item(outdir, name, audio, sr, phones, "festival-kal", hop, n_env)
    except feat.FeatureError as e:
        return name, 0.0, str(e)
    return name, secs, None


def _oohs_job(args):
    outdir, name, seed, notes_range, n_notes, sr, hop, n_env = args
    import mido

    rng = random.Random(seed)
    outdir = Path(outdir)
    mid = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=500000))  # 120 bpm: 480 ticks = 0.5 s
    tr.append(mido.Message("program_change", program=52, channel=0))
    t = 0.25
    phones = [["sil", 0.0, t]]
    delay = 240
    lo, hi = notes_range
    for _ in range(n_notes):
        note = rng.randint(lo, hi)
        dur = rng.choice([0.4, 0.6, 0.8, 1.2, 1.6])
        gap = rng.choice([0.15, 0.25, 0.4])
        vel = rng.randint(60, 120)
        tr.append(mido.Message("note_on", note=note, velocity=vel, time=delay))
        tr.append(mido.Message("note_off", note=note, velocity=0, time=int(dur * 960)))
        delay = int(gap * 960)
        phones.append(["UW", t, t + dur])
        phones.append(["sil", t + dur, t + dur + gap])
        t += dur + gap
    tr.append(mido.Message("control_change", control=123, value=0, time=delay + 480))
    with tempfile.TemporaryDirectory() as tmp:
        mp = os.path.join(tmp, "n.mid")
        wp = os.path.join(tmp, "n.wav")
        mid.save(mp)
        r = subprocess.run(
            ["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.8", "-r", str(sr), "-F", wp, SOUNDFONT, mp],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if r.returncode != 0 or not os.path.exists(wp):
            return name, 0.0, f"fluidsynth failed: {r.stderr[-300:]}"
        audio, fsr = feat.read_wav(wp)
    audio = feat.resample(audio, fsr, sr)[: int((t + 0.3) * sr)]
    audio = audio * (0.8 / max(1e-9, float(np.max(np.abs(audio)))))  # the soundfont is quiet
    try:
        secs = _write_item(outdir, name, audio, sr, phones, "fluidr3-oohs", hop, n_env)
    except feat.FeatureError as e:
        return name, 0.0, str(e)
    return name, secs, None


def _user_job(args):
    outdir, name, path, sr, hop, n_env = args
    try:
        audio, _ = feat.load_wav(path, sr)
        secs = _write_item(Path(outdir), name, audio, sr, [], "user", hop, n_env)
    except feat.FeatureError as e:
        return name, 0.0, str(e)
    return name, secs, None


def build_corpus(
    outdir,
    festival_songs=0,
    oohs_clips=0,
    wav_dir=None,
    heldout_songs=0,
    heldout_oohs=0,
    sample_rate=16000,
    hop=80,
    n_env=24,
    jobs=2,
    seed=1,
    notes=(48, 66),
    oohs_notes=(48, 72),
    notes_per_song=10,
    log=print,
) -> dict:
    """Render / import the corpus into ``outdir``; returns the manifest (also written)."""
    out = Path(outdir)
    (out / "train").mkdir(parents=True, exist_ok=True)
    (out / "heldout").mkdir(parents=True, exist_ok=True)
    if festival_songs or heldout_songs:
        if shutil.which("festival") is None:
            raise RuntimeError("festival not found: apt-get install festival festvox-kallpc16k")
    if oohs_clips or heldout_oohs:
        if shutil.which("fluidsynth") is None or not os.path.exists(SOUNDFONT):
            raise RuntimeError(f"fluidsynth or {SOUNDFONT} missing: apt-get install fluidsynth fluid-soundfont-gm")
    tasks: list[tuple] = []
    for i in range(festival_songs):
        tasks.append(
            (
                _festival_job,
                (
                    str(out / "train"),
                    f"fest{i:04d}",
                    seed * 100003 + i,
                    notes[0],
                    notes[1],
                    notes_per_song,
                    sample_rate,
                    hop,
                    n_env,
                ),
            )
        )
    for i in range(heldout_songs):
        tasks.append(
            (
                _festival_job,
                (
                    str(out / "heldout"),
                    f"fest{i:04d}",
                    seed * 100003 + 50000 + i,
                    notes[0],
                    notes[1],
                    notes_per_song,
                    sample_rate,
                    hop,
                    n_env,
                ),
            )
        )
    for i in range(oohs_clips):
        tasks.append(
            (_oohs_job, (str(out / "train"), f"oohs{i:04d}", seed * 7919 + i, oohs_notes, 8, sample_rate, hop, n_env))
        )
    for i in range(heldout_oohs):
        tasks.append(
            (
                _oohs_job,
                (str(out / "heldout"), f"oohs{i:04d}", seed * 7919 + 50000 + i, oohs_notes, 6, sample_rate, hop, n_env),
            )
        )
    if wav_dir:
        paths = sorted(p for p in Path(wav_dir).rglob("*") if p.suffix.lower() in (".wav", ".flac", ".ogg"))
        if not paths:
            raise RuntimeError(f"{wav_dir}: no .wav/.flac/.ogg files found")
        for i, p in enumerate(paths):
            tasks.append(
                (_user_job, (str(out / "train"), f"user{i:04d}_{p.stem[:40]}", str(p), sample_rate, hop, n_env))
            )
    errors = []
    done = 0
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as ex:
        futs = [ex.submit(fn, a) for fn, a in tasks]
        for fut in futs:
            name, secs, err = fut.result()
            done += 1
            if err:
                errors.append(f"{name}: {err}")
                log(f"  skipped {name}: {err}")
            if done % 20 == 0 or done == len(futs):
                log(f"  {done}/{len(futs)} items")
    manifest = scan(out)
    manifest.update({"sample_rate": sample_rate, "hop": hop, "n_env": n_env, "errors": errors})
    with open(out / "corpus.json", "w") as fh:
        json.dump(manifest, fh, indent=1)
    return manifest


def scan(outdir) -> dict:
    """Manifest of what ``outdir`` holds: seconds per split and source, licences."""
    out = Path(outdir)
    man: dict[str, dict] = {"splits": {}, "sources": {}}
    for split in ("train", "heldout"):
        items = []
        for j in sorted((out / split).glob("*.json")):
            with open(j) as fh:
                meta = json.load(fh)
            if not (out / split / f"{j.stem}.npy").exists():
                continue
            items.append({"name": j.stem, "source": meta["source"], "seconds": meta["seconds"]})
            s = man["sources"].setdefault(meta["source"], {"seconds": 0.0, "licence": LICENCES.get(meta["source"], "")})
            s["seconds"] += meta["seconds"] if split == "train" else 0.0
        man["splits"][split] = {"items": items, "seconds": sum(i["seconds"] for i in items)}
    return man


def load_split(corpus_dir, split="train", sources=None, hop=80):
    """List of ``(name, audio float32, features float32, meta)`` of a corpus split."""
    import soundfile

    d = Path(corpus_dir) / split
    if not d.is_dir():
        raise FileNotFoundError(f"{d}: no such corpus split (build one with `vocoder train corpus`)")
    items = []
    for j in sorted(d.glob("*.json")):
        with open(j) as fh:
            meta = json.load(fh)
        if sources and meta.get("source") not in sources:
            continue
        npy = d / f"{j.stem}.npy"
        wav = d / f"{j.stem}.wav"
        if not npy.exists() or not wav.exists():
            continue
        audio, _ = soundfile.read(str(wav), dtype="float32")
        f = np.load(npy, allow_pickle=False)
        items.append((j.stem, audio[: f.shape[0] * hop], f, meta))
    return items
