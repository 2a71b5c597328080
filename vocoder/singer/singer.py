"""The singer: timed events in, conditioning frames out (``docs/features.md``).

There is ONE singer. Its behaviour is the compiled core ``ext/engine/singer.c``; its
numbers are :class:`SingerParams` (defaults written here, once, and passed down); the
decisions about notes (held notes, legato, which syllable) are :class:`NotePlanner`.
:class:`vocoder.Voice`, :class:`vocoder.VoiceGroup` and ``vocoder live`` run them in
the audio callback; ``vocoder render`` runs them through :class:`Singer` here.

::

    from vocoder.singer.singer import Singer
    from vocoder.score.events import Event
    s = Singer(preset)                          # a Preset, or a preset config dict
    s.set_lyrics("Twin-kle twin-kle lit-tle star")
    s.push(Event.note_on(0.0, 60, 100))         # times in seconds on the singer's clock
    s.push(Event.note_off(0.5, 60))
    f = s.frames(200)                           # float32 [200, n_features]; advances time

``frames(n)`` renders the next ``n`` frames (frame ``t`` covers samples
``[t*hop, (t+1)*hop)``). An event at time ``t`` takes effect in the first frame that
starts at or after ``round(t * sample_rate) + EVENT_DELAY`` samples, exactly as in a
:class:`vocoder.Voice` fed the same event at that sample. The output depends only on the
events, not on how the frames are requested.

**The one difference between render and live** (:data:`EARLY_ONSETS`): a singer who
reads the score starts the consonants before a vowel early so that the vowel lands on
the beat. :class:`Singer` knows the events ahead (a file, pushed at once) and does so:
a note's onset consonants start before it (after a rest: into the rest; after a note
that runs up to it: together with that note's coda, cutting its vowel, at most by half).
A live voice cannot know a key is coming, so it sings the consonants from the key press
and the vowel comes after them. Pitch, dynamics and vibrato are the same in both;
``Singer(..., early_onsets=False)`` gives exactly the frames of a live voice.

What the singer does (both paths):

* **Notes**: a note after silence starts on pitch; a note played while another is held,
  or in the same frame the previous one is released, is legato: the pitch glides
  (exponential, ``portamento_tau``). A legato note without a syllable of its own (a live
  key, a melisma) keeps the vowel; one with a syllable from the file articulates it
  (the previous coda, then the new onset). Releasing a key while another is held goes
  back to that one. Velocity: ``velocity_db`` dB per decade around 100.
* **Lyrics**: a note's own syllable (readers resolve them from the file), else the next
  syllable of the lyric cursor, else the default vowel. Onset consonants, then the
  nucleus held (a diphthong holds its first vowel and moves to the second at the
  release), then the coda at the release and silence. Consonants never cut each other.
* **Controllers**: pitch bend times ``bend_range`` semitones (RPN 0 sets the range);
  mod wheel CC1 adds up to ``mod_depth`` semitones of vibrato; expression CC11 and
  breath CC2: ``cc_db`` dB per decade below 127 (40: General MIDI's volume curve);
  CC120 / CC123: silence now.
* **Vibrato**: ``vibrato_rate`` Hz, ``vibrato_depth`` semitones after ``vibrato_delay``,
  faded in over ``vibrato_attack``, out over ``vibrato_release`` after the note ends.
* **Spectrum**: per-phoneme envelopes and voicing from the preset's singer data
  (``config["singer"]``), or a built-in table from published formant frequencies;
  transitions are exponential (``transition_tau``, ``voicing_tau``).

Dropped when the two singers were made one (docs/render.md): the slow random pitch
drift and per-note random vibrato rate, the glide centred before the beat, the linear
f0 across rests and the 80 ms "legato gap" (all needed the future or were render-only).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import asdict, dataclass, fields, replace

import numpy as np

from ..score import lyrics as _lyrics
from ..score.events import CONTROL, LYRIC, NOTE_OFF, NOTE_ON, PITCH_BEND, Event
from ..score.lyrics import VOWELS, Syllable

#: Seconds before an event at which :class:`Singer` plans it (consonants start then at the earliest).
LEAD = 0.4
ENV_FLOOR = math.log(1e-10)
LN10_10 = math.log(10.0) / 10.0
#: The only behaviour render has and live lacks: onset consonants placed before the beat.
EARLY_ONSETS = "onset consonants start before the note, so its vowel lands on the beat"


@dataclass(frozen=True)
class SingerParams:
    """Every number of the singer's behaviour (seconds, semitones, dB): the one place
    their defaults are written. :class:`Singer`, :class:`vocoder.Voice` (and so
    ``VoiceGroup`` and ``vocoder live``) pass them to the compiled singer.

    Where the two former singers disagreed, the value kept and why:
    ``mod_depth`` 0.75 (not 1.0): with the natural 0.25 it makes at most +-1 semitone, the
    widest vibrato a trained singer uses. ``portamento_tau`` 0.045 exponential (not a
    0.07 s linear ramp centred before the note): it needs no knowledge of the future and
    is one state variable, like every other transition here. ``cc_db`` 40 (not 20):
    General MIDI's recommended curve for volume and expression, which keyboards and
    sequencers are made for. ``bend_range`` with RPN 0 (only render had it): files and
    keyboards both send it.
    """

    vibrato_rate: float = 5.5        # Hz
    vibrato_depth: float = 0.25      # peak deviation, semitones
    vibrato_delay: float = 0.25      # after the note starts
    vibrato_attack: float = 0.35     # fade-in time
    vibrato_release: float = 0.05    # fade-out after the note ends
    mod_depth: float = 0.75          # extra peak depth at mod wheel 127
    portamento_tau: float = 0.045    # legato glide, exponential
    bend_range: float = 2.0          # semitones at full pitch bend (until RPN 0 sets another)
    transition_tau: float = 0.012    # phoneme envelope changes, exponential
    voicing_tau: float = 0.008
    gain_tau: float = 0.010          # dynamics changes
    velocity_db: float = 30.0        # dB per decade of velocity around 100
    cc_db: float = 40.0              # dB per decade of CC11 / CC2 below 127
    consonant_scale: float = 1.0     # multiplies every consonant duration

    def replace(self, **kw) -> "SingerParams":
        return replace(self, **kw)

    def for_core(self) -> dict:
        """The fields the compiled singer takes (``consonant_scale`` is applied to the phone set)."""
        d = asdict(self)
        d.pop("consonant_scale")
        return {k: float(v) for k, v in d.items()}

    @classmethod
    def make(cls, params=None, **overrides) -> "SingerParams":
        p = params if params is not None else cls()
        if not isinstance(p, cls):
            raise TypeError(f"singer parameters must be a SingerParams, got {type(p).__name__}")
        if overrides:
            bad = sorted(set(overrides) - {f.name for f in fields(cls)})
            if bad:
                raise TypeError(f"Singer: unknown option(s) {', '.join(bad)}")
            p = replace(p, **overrides)
        for f in fields(cls):
            v = getattr(p, f.name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"singer parameter {f.name} must be a finite number >= 0, got {v!r}")
        return p


#: The former name of :class:`SingerParams` (the public API keeps it).
SingerOptions = SingerParams


# --------------------------------------------------------------------------- fallback table

# F1, F2, F3 (Hz) of American English vowels (Peterson & Barney 1952 / Hillenbrand et al.
# 1995, adult male averages) and approximants.
_FORMANTS = {
    "AA": (730, 1090, 2440), "AE": (660, 1720, 2410), "AH": (520, 1190, 2390), "AO": (570, 840, 2410),
    "EH": (530, 1840, 2480), "ER": (490, 1350, 1690), "IH": (390, 1990, 2550), "IY": (270, 2290, 3010),
    "UH": (440, 1020, 2240), "UW": (300, 870, 2240), "OW": (450, 800, 2400), "AY": (660, 1400, 2450),
    "AW": (640, 1100, 2400), "EY": (450, 2000, 2600), "OY": (500, 1000, 2400),
    "L": (360, 1300, 2700), "R": (420, 1300, 1600), "W": (300, 700, 2200), "Y": (280, 2200, 3000),
    "M": (250, 1100, 2200), "N": (250, 1500, 2500), "NG": (250, 2000, 2700),
}
_VOICED_CONS = {"B", "D", "G", "V", "DH", "Z", "ZH", "JH", "M", "N", "NG", "L", "R", "W", "Y"}
_STOPS = {"P", "B", "T", "D", "K", "G"}
_DURATIONS = {  # seconds, typical sung consonants
    "P": 0.06, "B": 0.05, "T": 0.06, "D": 0.05, "K": 0.07, "G": 0.06, "CH": 0.09, "JH": 0.08,
    "F": 0.09, "V": 0.07, "TH": 0.08, "DH": 0.05, "S": 0.11, "Z": 0.08, "SH": 0.11, "ZH": 0.08, "HH": 0.06,
    "M": 0.07, "N": 0.07, "NG": 0.07, "L": 0.06, "R": 0.06, "W": 0.06, "Y": 0.05,
}
# (centre Hz, bandwidth Hz, level dB relative to the vowel peak) of noise consonants
_NOISE = {
    "S": (6000, 2500, -14), "Z": (6000, 2500, -18), "SH": (3000, 1500, -12), "ZH": (3000, 1500, -16),
    "CH": (3200, 1800, -14), "JH": (3000, 1800, -18), "F": (4000, 6000, -30), "V": (4000, 6000, -30),
    "TH": (5000, 6000, -32), "DH": (4000, 6000, -30), "T": (4000, 2500, -20), "D": (3500, 2500, -24),
    "K": (2000, 900, -20), "G": (2000, 900, -24), "P": (1200, 4000, -26), "B": (1000, 4000, -28),
}
# Diphthongs sustain their first vowel and move to the second at the end.
DIPHTHONGS = {"AY": ("AA", "IH"), "AW": ("AA", "UH"), "EY": ("EH", "IY"), "OY": ("AO", "IY"), "OW": ("OW", "UW")}


def _mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, np.float64) / 700.0)


def _mel_inv(m):
    return 700.0 * (10.0 ** (np.asarray(m, np.float64) / 2595.0) - 1.0)


def _band_weights(n_env: int, sample_rate: int, n_bins: int = 513) -> np.ndarray:
    freqs = np.linspace(0.0, sample_rate / 2.0, n_bins)
    edges = _mel_inv(np.linspace(0.0, _mel(sample_rate / 2.0), n_env + 2))
    w = np.zeros((n_env, n_bins))
    for b in range(n_env):
        lo, c, hi = edges[b], edges[b + 1], edges[b + 2]
        w[b] = np.maximum(0.0, np.minimum((freqs - lo) / (c - lo), (hi - freqs) / (hi - c)))
        if w[b].sum() <= 0:
            w[b, int(np.argmin(np.abs(freqs - c)))] = 1.0
    return w / w.sum(axis=1, keepdims=True)


def _resonance_db(f, fc, bw):
    return 10 * np.log10(fc ** 4 / ((fc ** 2 - f ** 2) ** 2 + (f * bw) ** 2 + 1e-12))


#: Mean band level (ln power) of each consonant relative to the vowels' mean, and voicing,
#: measured on sung English (Festival's kal voice in singing mode, 120 files, middle
#: halves of each phone); the shapes come from the formant and noise models below.
_CONSONANT_LEVEL = {
    "B": (-7.7, 0.3), "CH": (-6.3, 0.0), "D": (-6.9, 0.2), "DH": (-5.6, 0.3), "F": (-2.9, 0.0),
    "G": (-7.5, 0.25), "HH": (-2.1, 0.3), "JH": (-5.9, 0.15), "K": (-9.2, 0.0), "L": (-1.7, 0.85),
    "M": (-2.7, 0.65), "N": (-2.6, 0.65), "NG": (-2.4, 0.7), "P": (-9.9, 0.0), "R": (-2.1, 0.95),
    "S": (-1.9, 0.0), "SH": (-1.6, 0.0), "T": (-8.8, 0.0), "TH": (-4.8, 0.0), "V": (-3.9, 0.55),
    "W": (-3.1, 0.9), "Y": (-1.7, 0.9), "Z": (-1.8, 0.7), "ZH": (-2.0, 0.6),
}
#: Mean band level of sung vowels (ln power of audio in [-1, 1], docs/features.md).
VOWEL_LEVEL = -6.0


def fallback_table(sample_rate: int, n_env: int) -> dict:
    """Built-in singer data: phoneme -> (envelope [n_env] ln power, voicing, duration s).

    Shapes from formant frequencies (vowels, approximants, nasals), noise bands
    (fricatives, affricates) and closures with a voice bar (stops); levels and voicing
    measured on sung English (:data:`_CONSONANT_LEVEL`); vowels average
    :data:`VOWEL_LEVEL`; ``sil`` is the features' floor (digital silence)."""
    f = np.linspace(0.0, sample_rate / 2.0, 513)
    w = _band_weights(n_env, sample_rate, 513)
    tilt = -10 * np.log10(1 + (f / 250.0) ** 2)  # glottal source with lip radiation: -6 dB/oct

    def vowel_db(fs, level=0.0):
        db = tilt.copy()
        for fc, bw in zip(tuple(fs) + (3500, 4500), (90, 110, 160, 250, 300)):
            if fc < sample_rate / 2:
                db += _resonance_db(f, fc, bw)
        return db + level

    raw = {}
    for p, fs in _FORMANTS.items():
        if p in ("M", "N", "NG"):
            anti = {"M": 1000, "N": 1800, "NG": 3000}[p]
            raw[p] = vowel_db(fs) - _resonance_db(f, anti, 200) - 12 * (f > 500)
        else:
            raw[p] = vowel_db(fs)
    bar = vowel_db((250, 1500, 2500))
    for p, (fc, bw, _) in _NOISE.items():
        db = 10 * np.log10(1.0 / (1.0 + ((f - fc) / bw) ** 2))
        if p in _STOPS:  # mostly closure: a weak burst, a voice bar for the voiced ones
            db = db - 10
            if p in _VOICED_CONS:
                db = np.maximum(db, bar - bar.max())
        elif p in _VOICED_CONS:
            db = np.maximum(db, bar - bar.max() - 10)
        raw[p] = db
    raw["HH"] = vowel_db(_FORMANTS["AH"]) - tilt  # breath: flat source through the vocal tract
    out = {}
    for p, db in raw.items():
        env = np.log(np.maximum(w @ (10.0 ** (db / 10.0)), 1e-30))
        if p in VOWELS:
            level, voiced = VOWEL_LEVEL, 1.0
        else:
            rel, voiced = _CONSONANT_LEVEL.get(p, (-6.0, 0.0))
            level = VOWEL_LEVEL + rel
        dev = env - env.mean()
        if p in _FORMANTS or p == "HH":
            dev *= 0.5  # the resonance model's peaks and valleys are twice as deep as sung spectra
        out[p] = (np.maximum(dev + level, ENV_FLOOR + 1.0), voiced, _DURATIONS.get(p, 0.2))
    out["sil"] = (np.full(n_env, ENV_FLOOR), 0.0, 0.2)
    return out


def singer_table(config: dict, n_env: int, sample_rate: int) -> tuple:
    """``(table, pitch_range, from_data)`` for a preset config: its singer data where
    present and consistent, every missing phoneme from :func:`fallback_table` shifted to
    the data's level."""
    fb = fallback_table(sample_rate, n_env)
    data = config.get("singer") or {}
    try:
        phon = list(data["phonemes"])
        envs = np.asarray(data["envelopes"], np.float64)
        if envs.shape != (len(phon), n_env) or not np.all(np.isfinite(envs)):
            raise ValueError
        voic = np.asarray(data.get("voicing", [1.0] * len(phon)), np.float64)
        durs = np.asarray(data.get("durations", [0.1] * len(phon)), np.float64)
        if voic.shape != (len(phon),) or durs.shape != (len(phon),):
            raise ValueError
    except (KeyError, TypeError, ValueError):
        return fb, None, False
    table = {}
    for i, p in enumerate(phon):
        p = str(p)
        p = "sil" if p.lower() in ("sil", "sp", "pau", "") else p.upper().rstrip("012")
        table[p] = (envs[i].copy(), float(np.clip(voic[i], 0, 1)), float(np.clip(durs[i], 0.02, 0.25)))
    vow = [table[p][0].mean() for p in VOWELS if p in table]
    shift = (float(np.mean(vow)) - float(np.mean([fb[p][0].mean() for p in VOWELS]))) if vow else 0.0
    for p, (env, v, d) in fb.items():
        if p not in table:
            table[p] = (env + (shift if p != "sil" else 0.0), v, d)
    pr = data.get("pitch_range")
    try:
        pr = (float(pr[0]), float(pr[1])) if pr is not None else None
    except (TypeError, ValueError, IndexError):
        pr = None
    return table, pr, True


def build_singer_data(items, hop=80, sample_rate=16000, n_env=24, pitch_range=None) -> dict:
    """Singer data (``docs/features.md``) from a corpus: ``items`` are ``(features [frames,
    2 + n_env], phones [[ARPAbet, start_s, end_s], ...])`` pairs, features from
    :func:`vocoder.train.features.extract`. The only version: ``vocoder.train`` uses it, and the
    shipped voice was built with it.

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
        if f.ndim != 2 or f.shape[1] < 2 + n_env:
            raise ValueError(f"features: expected [frames, 2 + {n_env}], got {f.shape}")
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


# --------------------------------------------------------------------------- the phone set


def check_features(cfg: dict, who: str = "Singer") -> int:
    """The number of envelope bands of a preset config that can sing, else ValueError."""
    try:
        names = list(cfg["feature_names"])
        int(cfg["sample_rate"]), int(cfg["hop"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{who}: the preset config lacks {e}") from None
    n_env = len(names) - 2
    if names[:2] != ["f0", "voicing"] or not 1 <= n_env <= 64 or names[2:] != [f"env{i}" for i in range(n_env)]:
        raise ValueError(f"{who}: the preset's features must be f0, voicing, env0..envN-1 with 1..64 bands "
                         f"(docs/features.md), got {names[:4]}{'...' if len(names) > 4 else ''}")
    return n_env


class PhoneSet:
    """A preset's phonemes as the compiled singer takes them: envelopes, voicing and
    consonant durations in frames (times ``consonant_scale``), by index."""

    def __init__(self, cfg: dict, params: SingerParams, who: str = "Singer"):
        from ..score.lyrics import DEFAULT_VOWEL

        n_env = check_features(cfg, who)
        self.sample_rate, self.hop = int(cfg["sample_rate"]), int(cfg["hop"])
        self.n_env = n_env
        self.table, self.pitch_range, self.has_singer_data = singer_table(cfg, n_env, self.sample_rate)
        self.names = list(self.table)
        self.index = {p: i for i, p in enumerate(self.names)}
        hop_s = self.hop / self.sample_rate
        self.envelopes = np.ascontiguousarray([self.table[p][0] for p in self.names], np.float32)
        self.voicing = np.ascontiguousarray([self.table[p][1] for p in self.names], np.float32)
        self.frames = np.ascontiguousarray(
            [max(1, int(round(self.table[p][2] * params.consonant_scale / hop_s))) for p in self.names], np.int32)
        self.sil = self.index["sil"]
        self.default_vowel = self.index.get(DEFAULT_VOWEL, self.index.get("AH", self.sil))

    def ids(self, phones) -> tuple:
        return tuple(self.index.get(p, self.sil) for p in phones)

    def vowel(self, p) -> int:
        return self.index.get(p, self.index.get("AH", self.default_vowel))

    def consonant_frames(self, ids) -> int:
        return int(sum(int(self.frames[i]) for i in ids))


# --------------------------------------------------------------------------- the planner

# Command kinds, the same numbers as ext/engine/singer.h's (checked when a singer is built).
NOTE, GLIDE, RELEASE, BEND, CC, PANIC, ONSET = 1, 2, 3, 4, 5, 6, 7


class Command(tuple):
    """One command to the compiled singer: ``(kind, note, value, cc, nucleus, onset, coda)``
    with phonemes as indices; ``legato`` marks a NOTE that follows a held note."""

    __slots__ = ()

    def __new__(cls, kind, note=0.0, value=0.0, cc=0, nucleus=0, onset=(), coda=(), legato=False):
        return tuple.__new__(cls, (kind, float(note), float(value), int(cc), int(nucleus), tuple(onset),
                                   tuple(coda), bool(legato)))

    kind = property(lambda self: self[0])
    onset = property(lambda self: self[5])
    coda = property(lambda self: self[6])
    legato = property(lambda self: self[7])

    def with_(self, onset=None, coda=None) -> "Command":
        return Command(*self[:5], self[5] if onset is None else onset, self[6] if coda is None else coda, self[7])

    def args(self) -> tuple:
        """What ``SingerCore.push`` / ``VoiceCore.push`` take after the time."""
        return self[:7]


def _check_kinds():
    from .. import _engine

    mine = (NOTE, GLIDE, RELEASE, BEND, CC, PANIC, ONSET)
    core = (_engine.EV_NOTE, _engine.EV_GLIDE, _engine.EV_RELEASE, _engine.EV_BEND, _engine.EV_CC,
            _engine.EV_PANIC, _engine.EV_ONSET)
    if mine != core:  # pragma: no cover - a build out of step with this file
        raise RuntimeError(f"vocoder._engine's singer commands {core} differ from vocoder.singer's {mine}; rebuild")


class NotePlanner:
    """Held notes, legato and syllables: the one place a note event becomes singer
    commands (:class:`vocoder.Voice` calls it as events are pushed, :class:`Singer` as
    it plans a song). Commands are :class:`Command` tuples.

    ``wrap_lyrics``: at the end of the lyrics start again (a keyboard, ``Voice``) or sing
    the default vowel (a file, ``Singer``)."""

    def __init__(self, phones: PhoneSet, transpose: int = 0, wrap_lyrics: bool = False):
        self.phones = phones
        self.transpose = int(transpose)
        self.wrap_lyrics = wrap_lyrics
        self._sylls = []
        self._pos = 0
        self.reset()

    def reset(self) -> None:
        """No note held; the lyric cursor back to the first syllable."""
        self._held = []          # notes held, oldest first
        self._sounding = None    # the syllable being sung
        self._last = None        # the last syllable articulated (a melisma continues it)
        self._pos = 0

    # ---- lyrics ----
    def set_lyrics(self, text: str) -> None:
        self._sylls = [s for s in _lyrics.text_syllables(text or "") if not s.melisma]
        self._pos = 0

    def add_lyrics(self, text: str) -> None:
        self._sylls.extend(s for s in _lyrics.text_syllables(text or "") if not s.melisma)

    def step(self, n: int = 1) -> None:
        self._pos = max(0, min(len(self._sylls), self._pos + int(n)))

    @property
    def upcoming(self) -> list:
        """The syllables new notes will sing, next first (one turn when wrapping)."""
        if self.wrap_lyrics and self._sylls:
            k = self._pos % len(self._sylls)
            return self._sylls[k:] + self._sylls[:k]
        return self._sylls[self._pos:]

    def _next_syllable(self) -> Syllable:
        if self.wrap_lyrics and self._sylls:
            s = self._sylls[self._pos % len(self._sylls)]
            self._pos = (self._pos + 1) % len(self._sylls)
            return s
        if self._pos < len(self._sylls):
            self._pos += 1
            return self._sylls[self._pos - 1]
        return _lyrics.default_syllable()

    @property
    def sounding(self) -> bool:
        return bool(self._held)

    @property
    def syllable(self) -> Syllable | None:
        """The syllable being sung (None when no note is held)."""
        return self._sounding

    # ---- notes ----
    def _nucleus(self, syl: Syllable) -> int:
        return self.phones.vowel(DIPHTHONGS.get(syl.nucleus, (syl.nucleus,))[0])

    def _closing(self, syl) -> tuple:
        """Phones that end a syllable: a diphthong's second vowel, then the coda."""
        if syl is None:
            return ()
        d = DIPHTHONGS.get(syl.nucleus)
        return ((d[1],) if d else ()) + tuple(syl.coda)

    def note_on(self, note, velocity=100, syllable: Syllable | None = None) -> list:
        if velocity <= 0:
            return self.note_off(note)
        pitch = float(note) + self.transpose
        legato = bool(self._held)
        self._held = [n for n in self._held if n != note] + [note]
        if legato:
            if syllable is None or syllable.melisma:   # a key pressed while another is held, a melisma
                return [Command(GLIDE, pitch)]
            # a new syllable on a legato note (from the file): the coda, then the onset, gliding
            cons = self._closing(self._sounding) + tuple(syllable.onset)
            self._sounding = self._last = syllable
            return [Command(NOTE, pitch, velocity, 0, self._nucleus(syllable), self.phones.ids(cons), legato=True)]
        if syllable is None:
            syllable = self._next_syllable()
        elif syllable.melisma:   # a melisma after a rest goes on with the last vowel
            last = self._last
            syllable = Syllable((), last.nucleus, tuple(last.coda), last.text) if last else _lyrics.default_syllable()
        self._sounding = self._last = syllable
        return [Command(NOTE, pitch, velocity, 0, self._nucleus(syllable), self.phones.ids(syllable.onset))]

    def note_off(self, note) -> list:
        if note not in self._held:
            return []
        was_top = self._held[-1] == note
        self._held.remove(note)
        if self._held:   # back to a key still held, without re-articulating
            return [Command(GLIDE, float(self._held[-1]) + self.transpose)] if was_top else []
        coda = self.phones.ids(self._closing(self._sounding))
        self._sounding = None
        return [Command(RELEASE, coda=coda)]

    def bend(self, value) -> list:
        return [Command(BEND, value=value)]

    def control(self, cc, value) -> list:
        if cc in (120, 123):
            return self.panic()
        return [Command(CC, value=value, cc=cc)]

    def panic(self) -> list:
        self._held = []
        self._sounding = None
        return [Command(PANIC)]

    def event(self, ev: Event) -> list:
        k = ev.kind
        if k == NOTE_ON:
            return self.note_on(ev.note, ev.velocity, ev.syllable)
        if k == NOTE_OFF:
            return self.note_off(ev.note)
        if k == PITCH_BEND:
            return self.bend(ev.value)
        if k == CONTROL:
            return self.control(ev.control, ev.value)
        if k == LYRIC:
            self.add_lyrics(ev.text)
        return []


# --------------------------------------------------------------------------- render's singer


class Singer:
    """The singer for a song: :meth:`push` events, take :meth:`frames`.

    Args:
        preset: a :class:`vocoder.Preset` or its config dict (needs ``sample_rate``,
            ``hop``, ``feature_names`` = f0, voicing, env0..; ``singer`` data optional).
        seed: kept for compatibility; the singer has no randomness (the engine's seed
            is what varies a performance).
        transpose: semitones added to every note.
        lyrics: text for the lyric cursor (see :meth:`set_lyrics`).
        options: :class:`SingerParams`, or keyword overrides of its fields.
        early_onsets: place onset consonants before the beat (:data:`EARLY_ONSETS`);
            False gives exactly the frames a live :class:`vocoder.Voice` makes.
    """

    def __init__(self, preset, seed: int = 0, transpose: int = 0, lyrics: str | None = None,
                 options: SingerParams | None = None, early_onsets: bool = True, **overrides):
        from .. import _engine

        cfg = preset.config if hasattr(preset, "config") else dict(preset)
        self.options = self.params = SingerParams.make(options, **overrides)
        self.phones = PhoneSet(cfg, self.params, "Singer")
        _check_kinds()
        self.sample_rate, self.hop, self.n_env = self.phones.sample_rate, self.phones.hop, self.phones.n_env
        self.n_features = 2 + self.n_env
        self.table, self.pitch_range, self.has_singer_data = (self.phones.table, self.phones.pitch_range,
                                                              self.phones.has_singer_data)
        self.seed = int(seed)
        self.early_onsets = bool(early_onsets)
        self.delay = int(_engine.EVENT_DELAY)
        self._core = _engine.SingerCore(self.phones.envelopes, self.phones.voicing, self.phones.frames,
                                        self.phones.sil, self.params.for_core(), self.hop, self.sample_rate)
        self._planner = NotePlanner(self.phones, transpose)
        self._lead_frames = int(LEAD * self.sample_rate / self.hop)
        self._initial_lyrics = lyrics
        self.reset()

    # ---- state -----------------------------------------------------------------------
    def reset(self) -> None:
        """Back to time 0 with no events, the lyric cursor refilled from ``lyrics``."""
        self._core.reset()
        self._planner.reset()
        self._planner.set_lyrics(self._initial_lyrics or "")
        self.frame = 0
        self._pending = []          # events not planned yet: (sort key, seq, event)
        self._seq = 0
        self._queue = []            # planned commands not given to the core: [frame, seq, time, command]
        self._last_note = None      # frame of the last NOTE
        self._last_release = None   # the last RELEASE entry
        self.early = []             # (onset frame, note frame, consonant frames) of every early onset

    @property
    def transpose(self) -> int:
        return self._planner.transpose

    @transpose.setter
    def transpose(self, t) -> None:
        self._planner.transpose = int(t)

    @property
    def frame_seconds(self) -> float:
        return self.hop / self.sample_rate

    @property
    def time(self) -> float:
        """Start time (s) of the next frame :meth:`frames` returns."""
        return self.frame * self.hop / self.sample_rate

    @property
    def sounding(self) -> bool:
        """A note is held (as far as the events planned so far go)."""
        return self._planner.sounding

    @property
    def pending_events(self) -> int:
        return len(self._pending)

    # ---- lyrics ----------------------------------------------------------------------
    def set_lyrics(self, text: str) -> None:
        """Replace the lyric cursor with the syllables of ``text`` (one per note; see
        :func:`vocoder.score.lyrics.text_syllables`)."""
        self._planner.set_lyrics(text)

    def add_lyrics(self, text: str) -> None:
        """Append the syllables of ``text`` to the lyric cursor."""
        self._planner.add_lyrics(text)

    @property
    def upcoming_syllables(self) -> list:
        """The syllables the cursor will give, next first."""
        return self._planner.upcoming

    # ---- events ----------------------------------------------------------------------
    def push(self, event: Event) -> None:
        """Queue an event (any time; past times take effect at the next frame)."""
        if not isinstance(event, Event):
            raise TypeError(f"Singer.push: expected an Event, got {type(event).__name__}")
        self._seq += 1
        bisect.insort(self._pending, (event.sort_key, self._seq, event))

    def push_many(self, events) -> None:
        for e in events:
            self.push(e)

    def pitch_warning(self, notes) -> str | None:
        """A warning line when MIDI ``notes`` (after this singer's ``transpose``) leave the
        preset's trained pitch range, else ``None``. It names only the notes outside the
        range, and suggests the octave shift that fits the most notes (as the total
        ``--transpose`` to give, counted from the one already applied)."""
        if self.pitch_range is None:
            return None
        lo, hi = self.pitch_range
        ps = [int(n) + self.transpose for n in notes]
        below = [p for p in ps if p < lo]
        above = [p for p in ps if p > hi]
        if not below and not above:
            return None
        where = []
        if below:
            where.append(f"{len(below)} below ({note_name(min(below))}..{note_name(max(below))})")
        if above:
            where.append(f"{len(above)} above ({note_name(min(above))}..{note_name(max(above))})")
        span = ", ".join(where)
        k, fit = best_octave_shift(ps, self.pitch_range, -48 - self.transpose, 48 - self.transpose)
        if k:
            hint = (f"; --transpose {k + self.transpose:+d} fits {fit} of {len(ps)}"
                    + (f" (instead of {self.transpose:+d})" if self.transpose else "")
                    + ", or give --transpose auto")
        else:
            hint = "; no octave shift fits more of them"
        return (f"{len(below) + len(above)} of {len(ps)} notes lie outside the voice's trained range "
                f"{note_name(lo)}..{note_name(hi)}: {span}; they may sound poor{hint}")

    # ---- frames ----------------------------------------------------------------------
    def frames(self, n: int) -> np.ndarray:
        """The next ``n`` frames, float32 ``[n, n_features]``; advances :attr:`time`."""
        n = int(n)
        if n < 0:
            raise ValueError("frames: n must be >= 0")
        end = self.frame + n
        t_end = end * self.hop / self.sample_rate
        while self._pending and self._pending[0][2].time - LEAD <= t_end:
            _, _, ev = self._pending.pop(0)
            self._plan(ev)
        while self._queue and self._queue[0][0] < end:
            f, _, tm, cmd = self._queue.pop(0)
            if not self._core.push(tm, *cmd.args()):  # pragma: no cover - 512 commands in one block
                raise RuntimeError("Singer: too many events in one block of frames; ask for fewer frames")
        out = self._core.frames(n)
        self.frame = end
        return out

    def render_song(self, events, duration: float) -> np.ndarray:
        """All frames of ``duration`` seconds for ``events`` (resets first)."""
        self.reset()
        self.push_many(events)
        n = int(math.ceil(duration / self.frame_seconds - 1e-9))
        out = np.empty((n, self.n_features), np.float32)
        for a in range(0, n, 256):  # blocks keep the queues short (same frames as one call)
            out[a:a + 256] = self.frames(min(256, n - a))
        return out

    # ---- planning ----------------------------------------------------------------------
    def _frame_of(self, tm: int) -> int:
        """The frame a command at model sample ``tm`` takes effect in (as ext/engine/singer.c)."""
        return -(-(tm + self.delay) // self.hop)

    def _enqueue(self, f: int, tm: int, cmd: Command) -> list:
        self._seq += 1
        entry = [f, self._seq, tm, cmd]
        bisect.insort(self._queue, entry, key=lambda e: (e[0], e[1]))
        return entry

    def _plan(self, ev: Event) -> None:
        tm = max(int(round(ev.time * self.sample_rate)), self.frame * self.hop - self.delay)
        f = self._frame_of(tm)
        for cmd in self._planner.event(ev):
            if cmd.kind == NOTE:
                if cmd.onset and self.early_onsets:
                    cmd = self._early_onset(f, cmd)
                self._last_note = f
            entry = self._enqueue(f, tm, cmd)
            if cmd.kind == RELEASE:
                self._last_release = entry

    def _early_onset(self, fN: int, cmd: Command) -> Command:
        """EARLY_ONSETS, the one thing render does that live does not: start the consonants
        before the vowel so that it lands on frame ``fN``. After a rest they go into the rest
        (once the last release has sung its coda); after a note that runs up to this one,
        that note's coda moves with them, cutting its vowel, at most by half. Pitch,
        velocity and vibrato still change at ``fN``. Returns the NOTE without consonants."""
        ph = self.phones
        cons = cmd.onset
        floor = max(self.frame, fN - self._lead_frames)
        half = self._last_note + (fN - self._last_note) // 2 if self._last_note is not None else 0
        rel = self._last_release
        rel_live = rel is not None and (self._last_note is None or rel[0] >= self._last_note)
        if cmd.legato:              # the planner put the previous coda before the onset already
            floor = max(floor, half)
        elif rel_live and rel[0] + 1 + ph.consonant_frames(rel[3].coda) > fN - ph.consonant_frames(cons):
            if rel[0] < self.frame:     # the release is already sung: no room before the note
                return cmd
            cons = rel[3].coda + cons   # joined: the coda goes just before the onset
            floor = max(floor, half)
        elif rel_live:
            floor = max(floor, rel[0] + 1 + ph.consonant_frames(rel[3].coda))
        fO = max(fN - ph.consonant_frames(cons), floor)
        if fO >= fN:
            return cmd
        if len(cons) > len(cmd.onset):
            rel[3] = rel[3].with_(coda=())
        self._enqueue(fO, fO * self.hop - self.delay, Command(ONSET, 0, 0, 0, cmd[4], cons))
        self.early.append((fO, fN, ph.consonant_frames(cons)))
        return cmd.with_(onset=())


def best_octave_shift(notes, pitch_range, lowest: int = -48, highest: int = 48) -> tuple:
    """``(shift, fitting)``: the multiple of 12 semitones in ``lowest..highest`` (keeping
    every note in MIDI 0..127) that puts the most of ``notes`` inside ``pitch_range`` =
    ``(lowest note, highest note)``, and how many then fit. Ties go to the smallest
    shift, so a song that already fits gets 0."""
    ps = [int(n) for n in notes]
    if not ps or pitch_range is None:
        return 0, len(ps)
    lo, hi = pitch_range
    best = (0, sum(lo <= p <= hi for p in ps))
    shifts = [k for k in range(-120, 121, 12) if lowest <= k <= highest]
    for k in sorted(shifts, key=lambda k: (abs(k), k)):
        if min(ps) + k < 0 or max(ps) + k > 127:
            continue
        fit = sum(lo <= p + k <= hi for p in ps)
        if fit > best[1]:
            best = (k, fit)
    return best


def note_name(midi) -> str:
    """``60`` -> ``"C4"``."""
    m = int(round(float(midi)))
    return ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"][m % 12] + str(m // 12 - 1)


__all__ = ["Singer", "SingerParams", "SingerOptions", "NotePlanner", "PhoneSet", "Command", "fallback_table",
           "singer_table", "build_singer_data", "best_octave_shift", "note_name", "LEAD", "EARLY_ONSETS"]
