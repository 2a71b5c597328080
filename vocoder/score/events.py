"""Events: one timed event type for every source (files, a live keyboard, a host's calls).

An :class:`Event` is a note on/off (with velocity), a pitch bend, a control change, a
lyric text, or a tempo change, at ``time`` seconds from the start (sample-accurate:
:meth:`Event.sample` gives the sample index at a rate). The singer
(:class:`vocoder.singer.Singer`) consumes them.

Files become a :class:`Song`, a monophonic line of :class:`Note` s with their syllables
plus the controls, which :meth:`Song.events` turns into events::

    from vocoder.score import events
    song = events.read_song("song.mid")               # MIDI, karaoke .kar or MusicXML
    song = events.read_midi("song.mid", track=1, channel=1)
    song = events.read_musicxml("song.musicxml")
    song = song.with_lyrics("Twin-kle twin-kle lit-tle star")   # one syllable per note
    song.events()                                     # sorted list of Event

Readers pick the top line where notes overlap, resolve lyrics to syllables (see
:mod:`vocoder.score.lyrics`: lyric meta events, karaoke text events, MusicXML lyrics with
syllabic hyphens; notes without a syllable after a sung one are melismas), and follow the
tempo map. Anything wrong with a file raises :class:`SongError` whose message starts
with the file name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import lyrics as _lyrics
from .lyrics import MELISMA, Syllable

NOTE_ON = "note_on"
NOTE_OFF = "note_off"
PITCH_BEND = "pitch_bend"
CONTROL = "control"
LYRIC = "lyric"
TEMPO = "tempo"
KINDS = (NOTE_ON, NOTE_OFF, PITCH_BEND, CONTROL, LYRIC, TEMPO)
# At equal times: note offs first (so a legato note_on sees its predecessor ended),
# then controls, then lyrics, then note ons.
_ORDER = {NOTE_OFF: 0, TEMPO: 1, PITCH_BEND: 1, CONTROL: 1, LYRIC: 2, NOTE_ON: 3}

#: Control numbers the singer reads.
CC_MODULATION = 1  # vibrato depth
CC_BREATH = 2  # dynamics
CC_VOLUME = 7  # dynamics
CC_EXPRESSION = 11  # dynamics
CC_ALL_NOTES_OFF = 123


class SongError(ValueError):
    """A song file is missing, empty, truncated or not understood; the message names it."""


@dataclass(frozen=True)
class Event:
    """One timed event. ``time`` is seconds from the start of the stream.

    * ``note_on``: ``note`` (MIDI number), ``velocity`` 1..127, optional ``syllable``
      (a :class:`vocoder.score.lyrics.Syllable`; ``None`` lets the singer take the next one
      from its lyric cursor).
    * ``note_off``: ``note``.
    * ``pitch_bend``: ``value`` in -1..1 (the singer scales it by its bend range).
    * ``control``: ``control`` number 0..127, ``value`` 0..127.
    * ``lyric``: ``text`` appended to the singer's lyric cursor.
    * ``tempo``: ``value`` in beats per minute (informational; times are in seconds).
    """

    time: float
    kind: str
    note: int = 0
    velocity: int = 0
    value: float = 0.0
    control: int = 0
    text: str = ""
    syllable: Syllable | None = None
    channel: int = 0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Event kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        t = float(self.time)
        if not t == t or t in (float("inf"), float("-inf")):
            raise ValueError(f"Event time must be finite, got {self.time!r}")
        object.__setattr__(self, "time", t)

    def sample(self, rate: int) -> int:
        """The sample index of this event at ``rate`` Hz."""
        return int(round(self.time * rate))

    @property
    def sort_key(self):
        return (self.time, _ORDER[self.kind])

    # constructors -----------------------------------------------------------------
    @classmethod
    def note_on(cls, time, note, velocity=100, syllable=None, channel=0) -> Event:
        return cls(time, NOTE_ON, note=int(note), velocity=int(velocity), syllable=syllable, channel=channel)

    @classmethod
    def note_off(cls, time, note, channel=0) -> Event:
        return cls(time, NOTE_OFF, note=int(note), channel=channel)

    @classmethod
    def pitch_bend(cls, time, value, channel=0) -> Event:
        """``value`` in -1..1 (MIDI's -8192..8191 divided by 8192)."""
        return cls(time, PITCH_BEND, value=max(-1.0, min(1.0, float(value))), channel=channel)

    @classmethod
    def control_change(cls, time, control, value, channel=0) -> Event:
        return cls(time, CONTROL, control=int(control), value=float(value), channel=channel)

    @classmethod
    def lyric(cls, time, text) -> Event:
        return cls(time, LYRIC, text=str(text))

    @classmethod
    def tempo(cls, time, bpm) -> Event:
        return cls(time, TEMPO, value=float(bpm))


@dataclass
class Note:
    """One sung note: ``start`` and ``end`` in seconds, MIDI ``pitch``, ``velocity``,
    its ``syllable`` (``None``: the singer's choice, a default vowel when it has no
    lyrics) and the lyric ``text`` as written."""

    start: float
    end: float
    pitch: int
    velocity: int = 90
    syllable: Syllable | None = None
    channel: int = 0


@dataclass
class Song:
    """A monophonic line with its controls, as read from a file.

    ``words`` are the lyric words as written (for the language check of
    :func:`vocoder.score.lyrics.dictionary_coverage`). A MusicXML song also says which part
    it is: ``part`` (index into ``parts``, the names of all the file's parts) and
    ``part_reason`` (why that part, see :func:`read_musicxml`).
    """

    notes: list
    controls: list = field(default_factory=list)  # Event: pitch_bend, control, tempo
    source: str = ""
    has_lyrics: bool = False
    title: str = ""
    words: list = field(default_factory=list)
    part: int | None = None
    parts: list = field(default_factory=list)
    part_reason: str = ""

    @property
    def duration(self) -> float:
        """End of the last note, seconds."""
        return max((n.end for n in self.notes), default=0.0)

    def events(self) -> list:
        """Every note on/off and control as :class:`Event` s, sorted by time."""
        ev = []
        for n in self.notes:
            ev.append(Event.note_on(n.start, n.pitch, n.velocity, n.syllable, n.channel))
            ev.append(Event.note_off(n.end, n.pitch, n.channel))
        ev.extend(self.controls)
        ev.sort(key=lambda e: e.sort_key)
        return ev

    def with_lyrics(self, text: str) -> Song:
        """A copy with ``text`` laid one syllable per note (see
        :func:`vocoder.score.lyrics.text_syllables`); notes past the last syllable continue it."""
        sylls = _lyrics.text_syllables(text)
        notes = []
        for i, n in enumerate(self.notes):
            s = sylls[i] if i < len(sylls) else (MELISMA if sylls else None)
            if i == 0 and s is not None and s.melisma:
                s = _lyrics.default_syllable()
            notes.append(replace(n, syllable=s))
        words = [w for w in (t.replace("-", "") for t in text.split()) if _lyrics.normalize_word(w)]
        return replace(self, notes=notes, controls=list(self.controls), has_lyrics=bool(sylls), words=words)

    def transposed(self, semitones: int) -> Song:
        return replace(
            self, notes=[replace(n, pitch=n.pitch + int(semitones)) for n in self.notes], controls=list(self.controls)
        )

    def part_summary(self) -> str:
        """One line for the user: the part sung, why, and the others (MusicXML), or ``""``."""
        if self.part is None or not self.parts:
            return ""
        listing = ", ".join(f'{i} "{n}"' for i, n in enumerate(self.parts))
        line = f'singing part {self.part} "{self.parts[self.part]}" ({self.part_reason})'
        if len(self.parts) > 1:
            line += f"; parts: {listing}; choose another with --part NAME|NUMBER"
        return line

    def pitch_span(self):
        """``(lowest, highest)`` MIDI note, or ``None`` without notes."""
        if not self.notes:
            return None
        return min(n.pitch for n in self.notes), max(n.pitch for n in self.notes)


# --------------------------------------------------------------------------- helpers


def top_line(notes, chord_tolerance: float = 0.03) -> list:
    """Reduce overlapping notes to one line: a higher note always wins (the note it
    interrupts ends there); a lower note that starts while another sounds is dropped when
    it starts with it (a chord) or ends within it (an inner voice), and otherwise
    follows it (overlapping legato)."""
    notes = sorted((n for n in notes if n.end > n.start), key=lambda n: (n.start, -n.pitch))
    out: list[Note] = []
    for n in notes:
        if out and out[-1].end > n.start:
            prev = out[-1]
            if n.pitch > prev.pitch:
                prev.end = n.start
                if prev.end - prev.start < 1e-3:
                    out.pop()
                out.append(n)
            elif n.start - prev.start < chord_tolerance or n.end <= prev.end:
                continue
            else:
                prev.end = n.start
                out.append(n)
        else:
            out.append(n)
    return out


def _syllables_for(notes, fragments: dict) -> bool:
    """Set ``note.syllable`` from ``fragments`` (note index -> (text, continues)). Notes
    after the first lyric without their own fragment become melismas. Returns whether
    there were any lyrics."""
    if not fragments:
        return False
    first = min(fragments)
    idx = [i for i in range(first, len(notes))]
    items = [fragments.get(i) for i in idx]
    sylls = _lyrics.fragments_to_syllables(items)
    for i, s in zip(idx, sylls):
        notes[i].syllable = s
    return True


def _words_of(fragments: dict) -> list:
    """The written words of ``fragments`` (note index -> (text, continues)), fragments
    of one word joined."""
    words, cur = [], ""
    for i in sorted(fragments):
        text, cont = fragments[i]
        cur += text
        if not cont:
            words.append(cur)
            cur = ""
    if cur:
        words.append(cur)
    return words


def _clean_fragments(raw: list) -> list:
    """Lyric texts as files store them to ``(text, continues)`` pairs (``None`` dropped).

    A hyphen at the end (or the next fragment's start) joins two fragments into a word;
    where the file separates words with spaces (lyric meta events like ``"lo "``, karaoke
    ``"/Twin"`` ``"kle "``), a fragment not followed by a space also continues.
    """
    items = []
    for text in raw:
        t = text.replace("\r", " ").replace("\n", " ")
        new_before = t[:1] in (" ", "/", "\\", "\t")
        stripped = t.strip().lstrip("/\\").strip()
        items.append((stripped, new_before, t[-1:].isspace() if t else True))
    uses_spaces = any(nb or es for _, nb, es in items)
    out = []
    for k, (s, _, es) in enumerate(items):
        hyph_end = s.endswith("-")
        nxt = items[k + 1] if k + 1 < len(items) else None
        hyph_next = nxt is not None and nxt[0].startswith("-")
        word = s.strip("-").strip()
        cont = hyph_end or hyph_next or (uses_spaces and not es and nxt is not None and not nxt[1])
        out.append((word, cont))
    return out


def _assign_lyrics(notes, lyric_events, tol: float = 0.08) -> dict:
    """Attach ``(time, text)`` lyrics to the nearest note start (within ``tol`` s, the
    first note at or after the lyric preferred); returns note index -> (text, continues)."""
    if not notes or not lyric_events:
        return {}
    import bisect

    starts = [n.start for n in notes]
    frags = _clean_fragments([t for _, t in lyric_events])
    out: dict = {}
    for (t, _), (word, cont) in zip(lyric_events, frags):
        if not _lyrics.normalize_word(word):
            continue  # punctuation, empty
        k = bisect.bisect_left(starts, t - 1e-6)
        cands = [j for j in (k, k - 1) if 0 <= j < len(notes) and abs(starts[j] - t) <= tol]
        if not cands:
            continue
        j = cands[0]
        if j in out:  # two fragments on one note: sing them as one syllable
            word = out[j][0] + word
        out[j] = (word, cont)
    return out


# --------------------------------------------------------------------------- MIDI


def _midi_seconds(mid):
    """A function ticks -> seconds from the file's tempo map (all tracks' set_tempo)."""
    import bisect

    tpb = mid.ticks_per_beat
    changes = []
    for tr in mid.tracks:
        tick = 0
        for msg in tr:
            tick += msg.time
            if msg.type == "set_tempo":
                changes.append((tick, msg.tempo))
    changes.sort(key=lambda c: c[0])
    ticks, secs, tempos = [0], [0.0], [500000]
    for tick, tempo in changes:
        if tick == ticks[-1]:
            tempos[-1] = tempo
            continue
        secs.append(secs[-1] + (tick - ticks[-1]) * tempos[-1] / (1e6 * tpb))
        ticks.append(tick)
        tempos.append(tempo)

    def at(tick):
        i = bisect.bisect_right(ticks, tick) - 1
        return secs[i] + (tick - ticks[i]) * tempos[i] / (1e6 * tpb)

    return at, list(zip(ticks, tempos))


def read_midi(path: str | os.PathLike, track: int | None = None, channel: int | None = None) -> Song:
    """A standard MIDI file (type 0 or 1, ``.mid`` / ``.kar``) as a :class:`Song`.

    ``track``: index into the file's tracks (0-based, as mido counts them); ``channel``:
    MIDI channel 1..16. By default the notes come from the track whose note starts best
    match the lyrics, or from every track but the drums (channel 10). Lyrics come from
    lyric meta events, or from karaoke text events when the file has no lyric events.
    """
    import mido

    path = Path(path)
    where = str(path)
    _check_file(path)
    try:
        mid = mido.MidiFile(str(path), clip=True)
    except EOFError:
        raise SongError(f"{where}: truncated MIDI file (the data ends inside a chunk)") from None
    except OSError as e:
        raise SongError(f"{where}: not a MIDI file ({e})") from None
    except (KeyError, ValueError, IndexError, TypeError) as e:
        raise SongError(f"{where}: corrupt MIDI data ({type(e).__name__}: {e})") from None
    if mid.type == 2:
        raise SongError(f"{where}: MIDI type 2 (independent sequences) is not supported")
    if not mid.tracks:
        raise SongError(f"{where}: the MIDI file has no tracks")
    if track is not None and not 0 <= track < len(mid.tracks):
        raise SongError(f"{where}: no track {track}; the file has tracks 0..{len(mid.tracks) - 1}")
    if channel is not None and not 1 <= channel <= 16:
        raise SongError(f"{where}: channel must be 1..16, got {channel}")
    sec, tempo_map = _midi_seconds(mid)

    per_track = []
    title = ""
    for tr in mid.tracks:
        tick = 0
        open_notes: dict[tuple[int, int], Note] = {}  # (channel, note) -> the note sounding
        notes, controls, lyr, texts = [], [], [], []
        for msg in tr:
            tick += msg.time
            t = sec(tick)
            if msg.is_meta:
                if msg.type == "lyrics":
                    lyr.append((t, msg.text))
                elif msg.type == "text":
                    texts.append((t, msg.text))
                elif msg.type == "track_name" and not title and msg.name.strip():
                    title = msg.name.strip()
                continue
            ch = getattr(msg, "channel", None)
            if ch is None:
                continue
            if msg.type == "note_on" and msg.velocity > 0:
                key = (ch, msg.note)
                if key in open_notes:  # re-struck without an off: end the old one here
                    n = open_notes.pop(key)
                    n.end = t
                    notes.append(n)
                open_notes[key] = Note(t, t, msg.note, msg.velocity, None, ch)
            elif msg.type in ("note_off", "note_on"):
                ended = open_notes.pop((ch, msg.note), None)
                if ended is not None:
                    ended.end = t
                    notes.append(ended)
            elif msg.type == "pitchwheel":
                controls.append(Event.pitch_bend(t, msg.pitch / 8192.0, ch))
            elif msg.type == "control_change":
                controls.append(Event.control_change(t, msg.control, msg.value, ch))
        end_t = sec(tick)
        for n in open_notes.values():  # never released: end at the track's end
            n.end = max(end_t, n.start)
            notes.append(n)
        per_track.append((notes, controls, lyr, texts))

    def wanted(n):
        if channel is not None:
            return n.channel == channel - 1
        return n.channel != 9  # drums

    all_lyrics = sorted((x for p in per_track for x in p[2]), key=lambda x: x[0])
    lyric_source = "lyrics"
    if not all_lyrics:
        texts = sorted((x for p in per_track for x in p[3]), key=lambda x: x[0])
        karaoke = path.suffix.lower() == ".kar" or any(tx.startswith("@") for _, tx in texts)
        texts = [(t, tx) for t, tx in texts if not tx.startswith(("@", "%"))]
        if karaoke or len(texts) >= 4:
            all_lyrics = texts
            lyric_source = "text"

    if track is not None:
        chosen = [track]
        own = [x for x in per_track[track][2]] if lyric_source == "lyrics" else []
        lyric_events = sorted(own, key=lambda x: x[0]) if own else all_lyrics
    else:
        lyric_events = all_lyrics
        chosen = list(range(len(per_track)))
        if lyric_events:  # the track whose notes start where the lyrics are
            times = [t for t, _ in lyric_events]

            def score(i):
                starts = sorted({round(n.start, 3) for n in per_track[i][0] if wanted(n)})
                return sum(1 for t in times if _near(starts, t, 0.03))

            best = max(range(len(per_track)), key=score)
            if score(best) > 0:
                chosen = [best]
    notes = [n for i in chosen for n in per_track[i][0] if wanted(n)]
    if not notes:
        what = f"track {track}" if track is not None else "the file"
        what += f", channel {channel}" if channel is not None else ""
        have = []
        for i, (ns, _, _, _) in enumerate(per_track):
            if ns:
                chans = sorted({n.channel + 1 for n in ns})
                have.append(f"{i} ({len(ns)} on channel{'s' if len(chans) > 1 else ''} {','.join(map(str, chans))})")
        hint = f"; tracks with notes: {'; '.join(have)}" if have else ""
        raise SongError(f"{where}: no notes in {what}{hint}")
    note_channels = {n.channel for n in notes}
    controls = [e for i in chosen for e in per_track[i][1] if e.channel in note_channels]
    controls += [Event.tempo(sec(tk), 60e6 / tp) for tk, tp in tempo_map]
    controls.sort(key=lambda e: e.sort_key)
    line = top_line(notes)
    if not line:
        raise SongError(f"{where}: every note has zero length")
    frags = _assign_lyrics(line, lyric_events)
    has = _syllables_for(line, frags)
    return Song(line, controls, where, has, title, words=_words_of(frags))


def _near(sorted_list, t, tol) -> bool:
    import bisect

    k = bisect.bisect_left(sorted_list, t - tol)
    return k < len(sorted_list) and sorted_list[k] <= t + tol


# --------------------------------------------------------------------------- MusicXML

_DYNAMICS = {
    "pppp": 20,
    "ppp": 30,
    "pp": 42,
    "p": 56,
    "mp": 70,
    "mf": 84,
    "f": 98,
    "ff": 112,
    "fff": 124,
    "ffff": 127,
    "sf": 110,
    "sfz": 110,
    "fp": 98,
    "fz": 110,
}


# fmt: off
_VOICE_WORDS = ("voice", "vocal", "singer", "choir", "chorus", "soprano", "mezzo", "alto", "tenor", "baritone",
                "contralto", "countertenor", "canto")
# fmt: on


def _is_voice(p) -> bool:
    """Whether a music21 part is sung: its instrument is a music21 ``Vocalist`` (from the
    file's ``<score-instrument>`` / ``voice.*`` instrument sound, or its part name, as
    music21 reads names: "Soprano", "Bass", "Voice", ...), or its name holds a voice word."""
    from music21 import instrument

    try:
        inst = p.getInstrument(returnDefault=False)
    except Exception:  # noqa: BLE001
        inst = None
    if isinstance(inst, instrument.Vocalist) or str(getattr(inst, "instrumentSound", "") or "").startswith("voice."):
        return True
    for name in (p.partName, getattr(inst, "instrumentName", None)):
        if not name:
            continue
        try:  # a name music21 knows decides ("Tenor Saxophone" is no tenor)
            return isinstance(instrument.fromString(str(name)), instrument.Vocalist)
        except Exception:  # noqa: BLE001 - music21 does not know the name: look for a voice word
            if any(w in str(name).lower() for w in _VOICE_WORDS):
                return True
    return False


def _part_name(p, i: int) -> str:
    return str(p.partName or getattr(p.getInstrument(), "instrumentName", None) or f"part {i}").strip()


def _choose_part(where: str, parts: list, part: int | str | None) -> tuple[int, str]:
    """``(index, reason)`` of the part to sing; ``part`` is ``None``, an index or a name."""
    names = [_part_name(p, i) for i, p in enumerate(parts)]
    listing = ", ".join(f'{i} "{n}"' for i, n in enumerate(names))
    if part is not None:
        if isinstance(part, str) and part.strip().lstrip("+").isdigit():
            part = int(part)
        if isinstance(part, int):
            if not 0 <= part < len(parts):
                raise SongError(f"{where}: no part {part}; the parts are {listing}")
            return part, "chosen with --part"
        key = str(part).strip().lower()
        ids = [str(p.id).lower() for p in parts]
        exact = [i for i, n in enumerate(names) if n.lower() == key] or [i for i, x in enumerate(ids) if x == key]
        found = exact or [i for i, n in enumerate(names) if key in n.lower()]
        if len(found) == 1:
            return found[0], "chosen with --part"
        if not found:
            raise SongError(f"{where}: no part named {part!r}; the parts are {listing}")
        which = ", ".join(f'{i} "{names[i]}"' for i in found)
        raise SongError(f"{where}: {len(found)} parts match {part!r} ({which}); give the part's number")
    if len(parts) == 1:
        return 0, "the only part"
    with_lyrics = [i for i, p in enumerate(parts) if any(n.lyrics for n in p.recurse().notes)]
    if with_lyrics:
        return with_lyrics[0], "the first part with lyrics"
    voices = [i for i, p in enumerate(parts) if _is_voice(p)]
    if voices:
        return voices[0], "no part has lyrics; the first voice part"
    import statistics

    def median_pitch(p):
        ps = [max(x.ps for x in n.pitches) for n in p.recurse().notes if getattr(n, "pitches", None)]
        return statistics.median(ps) if ps else -1.0

    highs = [median_pitch(p) for p in parts]
    best = max(range(len(parts)), key=lambda i: (highs[i], -i))
    from ..singer import note_name

    med = f", median {note_name(highs[best])}" if highs[best] >= 0 else ""
    return best, f"no part has lyrics or is a voice; the highest part{med}"


def read_musicxml(path: str | os.PathLike, part: int | str | None = None) -> Song:
    """A MusicXML file (``.musicxml``, ``.xml``, compressed ``.mxl``) as a :class:`Song`,
    parsed with music21.

    ``part``: the part to sing, its index (0-based, an int or a string of digits) or its
    name (the part name or id, case-insensitive; a unique part of a name will do). By
    default: the only part; else the first part with lyrics; else the first part whose
    instrument is a voice (see :func:`_is_voice`); else the highest part (highest median
    pitch). The song's ``part``, ``parts`` and ``part_reason`` say which and why
    (:meth:`Song.part_summary`).

    Tied notes are joined, chords and voices reduce to the top line, tempo marks set the
    timing (120 BPM without one), dynamics marks set velocities, and lyrics keep their
    syllabic hyphens (``begin``/``middle``/``end``); notes without a lyric after a sung
    one (extensions, slurred runs) are melismas.
    """
    path = Path(path)
    where = str(path)
    _check_file(path)
    try:
        from music21 import converter
    except ImportError:  # pragma: no cover
        raise SongError(f"{where}: reading MusicXML needs music21 (pip install music21)") from None
    try:
        score = converter.parse(str(path), format="musicxml", forceSource=True)
    except Exception as e:  # noqa: BLE001 - music21 raises many kinds
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SongError(f"{where}: not a readable MusicXML file ({msg[:200]})") from None
    parts = list(getattr(score, "parts", [])) or [score]
    index, reason = _choose_part(where, parts, part)
    part_names = [_part_name(q, i) for i, q in enumerate(parts)]
    p = parts[index].stripTies()

    # tempo map in quarter lengths -> seconds
    bounds = []
    try:
        for start, end, mm in score.metronomeMarkBoundaries():
            qbpm = mm.getQuarterBPM() or 120.0
            bounds.append((float(start), float(end), float(qbpm)))
    except Exception:  # noqa: BLE001
        bounds = []
    if not bounds:
        bounds = [(0.0, float("inf"), 120.0)]

    def sec(q):
        s = 0.0
        for a, b, bpm in bounds:
            if q <= a:
                break
            s += (min(q, b) - a) * 60.0 / bpm
        if q > bounds[-1][1]:
            s += (q - bounds[-1][1]) * 60.0 / bounds[-1][2]
        return s

    flat = p.flatten()
    dyn = sorted(
        (float(d.getOffsetInHierarchy(p) if False else d.offset), _DYNAMICS.get(d.value, 84))
        for d in flat.getElementsByClass("Dynamic")
    )
    notes, frags = [], {}
    for el in flat.notes:
        q0 = float(el.offset)
        ql = float(el.duration.quarterLength)
        if ql <= 0:
            continue  # grace notes
        if el.isChord:
            pitches = list(el.pitches)
            if not pitches:
                continue
            midi = max(int(round(x.ps)) for x in pitches)
        else:
            if not hasattr(el, "pitch"):
                continue
            midi = int(round(el.pitch.ps))
        vel = 84
        for off, v in dyn:
            if off <= q0 + 1e-9:
                vel = v
        n = Note(sec(q0), sec(q0 + ql), midi, vel)
        lyr = None
        for ly in el.lyrics:
            if ly.text is not None and (ly.number in (1, None) or lyr is None):
                lyr = ly
                if ly.number in (1, None):
                    break
        notes.append((n, lyr))
    if not notes:
        raise SongError(
            f'{where}: no notes in part {index} "{part_names[index]}"'
            + (f"; the parts are {', '.join(f'{i} {n!r}' for i, n in enumerate(part_names))}" if len(parts) > 1 else "")
        )
    # top line; lyrics follow the notes that survive
    keep = top_line([n for n, _ in notes])
    kept = {id(n) for n in keep}
    lyr_of = {id(n): ly for n, ly in notes if id(n) in kept}
    for i, n in enumerate(keep):
        ly = lyr_of.get(id(n))
        if ly is not None and ly.text and _lyrics.normalize_word(ly.text):
            frags[i] = (ly.text.strip(), ly.syllabic in ("begin", "middle"))
    has = _syllables_for(keep, frags)
    title = ""
    try:
        title = (score.metadata.title or "") if score.metadata else ""
    except Exception:  # noqa: BLE001
        pass
    controls = [Event.tempo(sec(a), bpm) for a, _, bpm in bounds]
    return Song(
        keep, controls, where, has, title, words=_words_of(frags), part=index, parts=part_names, part_reason=reason
    )


# --------------------------------------------------------------------------- any file


def _check_file(path: Path) -> None:
    where = str(path)
    if not path.exists():
        raise SongError(f"{where}: no such file")
    if path.is_dir():
        raise SongError(f"{where}: is a directory, not a song file")
    try:
        size = path.stat().st_size
        with open(path, "rb"):
            pass
    except OSError as e:
        raise SongError(f"{where}: cannot read ({e.strerror or e})") from None
    if size == 0:
        raise SongError(f"{where}: empty file")


def sniff(path) -> str:
    """``"midi"`` or ``"musicxml"`` from a file's first bytes (and its extension), or
    :class:`SongError` saying what it is not."""
    path = Path(path)
    where = str(path)
    _check_file(path)
    with open(path, "rb") as f:
        head = f.read(4096)
    ext = path.suffix.lower()
    if head.startswith(b"MThd"):
        return "midi"
    if head.startswith(b"RIFF") and head[8:12] == b"RMID":
        raise SongError(f"{where}: RIFF MIDI (.rmi) is not supported; save it as a standard MIDI file")
    if head.startswith(b"PK\x03\x04"):
        if ext in (".mxl", ".musicxml", ".xml", ""):
            return "musicxml"
        raise SongError(f"{where}: a zip archive, not a MIDI or MusicXML file")
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"<"):
        if b"score-partwise" in head or b"score-timewise" in head:
            return "musicxml"
        raise SongError(f"{where}: an XML file but not MusicXML (no score-partwise or score-timewise)")
    if ext in (".mid", ".midi", ".kar", ".smf"):
        raise SongError(f"{where}: not a MIDI file (no MThd header)")
    if ext in (".musicxml", ".xml", ".mxl"):
        raise SongError(f"{where}: not a MusicXML file (no XML or zip header)")
    raise SongError(f"{where}: not a MIDI or MusicXML file")


def read_song(
    path: str | os.PathLike, track: int | None = None, channel: int | None = None, part: int | str | None = None
) -> Song:
    """Read a MIDI or MusicXML file, recognised by its content. For MusicXML ``part``
    (an index or a name, see :func:`read_musicxml`) or ``track`` (an index) picks the
    part and ``channel`` is not used; a MIDI file takes ``track`` and ``channel``."""
    kind = sniff(path)
    where = str(path)
    if kind == "midi":
        if part is not None:
            raise SongError(f"{where}: --part picks a MusicXML part; for a MIDI file use --track N and/or --channel C")
        return read_midi(path, track=track, channel=channel)
    if part is not None and track is not None:
        raise SongError(f"{where}: give --part or --track, not both (both pick the MusicXML part)")
    return read_musicxml(path, part=part if part is not None else track)


__all__ = [
    "Event",
    "Note",
    "Song",
    "SongError",
    "read_midi",
    "read_musicxml",
    "read_song",
    "sniff",
    "top_line",
    "NOTE_ON",
    "NOTE_OFF",
    "PITCH_BEND",
    "CONTROL",
    "LYRIC",
    "TEMPO",
]
