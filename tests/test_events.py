"""Events, file readers (MIDI with lyrics / karaoke text, MusicXML) and lyrics to phonemes."""

import mido
import pytest

from vocoder.score import lyrics
from vocoder.score.events import Event, Note, SongError, read_midi, read_musicxml, read_song, top_line

# --------------------------------------------------------------------------- helpers


def write_midi(path, tracks, tpb=480, tempo=500000, kar_text=False):
    """``tracks``: list of lists of (start_beat, beats, note, lyric_or_None[, channel])."""
    m = mido.MidiFile(ticks_per_beat=tpb)
    for k, notes in enumerate(tracks):
        tr = mido.MidiTrack()
        m.tracks.append(tr)
        ev = []
        if k == 0 and tempo is not None:
            ev.append((0, 0, mido.MetaMessage("set_tempo", tempo=tempo)))
        for item in notes:
            start, beats, note, lyr = item[:4]
            ch = item[4] if len(item) > 4 else 0
            t0, t1 = int(start * tpb), int((start + beats) * tpb)
            if lyr is not None:
                kind = "text" if kar_text else "lyrics"
                ev.append((t0, 1, mido.MetaMessage(kind, text=lyr)))
            ev.append((t0, 2, mido.Message("note_on", note=note, velocity=90, channel=ch)))
            ev.append((t1, 0, mido.Message("note_off", note=note, velocity=0, channel=ch)))
        ev.sort(key=lambda e: (e[0], e[1]))
        last = 0
        for t, _, msg in ev:
            tr.append(msg.copy(time=t - last))
            last = t
    m.save(str(path))
    return path


MUSICXML = """<?xml version="1.0" encoding="UTF-8"?>
<score-partwise version="3.1">
  <part-list><score-part id="P1"><part-name>Voice</part-name></score-part></part-list>
  <part id="P1">
    <measure number="1">
      <attributes><divisions>1</divisions><time><beats>4</beats><beat-type>4</beat-type></time>
        <clef><sign>G</sign><line>2</line></clef></attributes>
      <direction><direction-type><metronome><beat-unit>quarter</beat-unit><per-minute>{bpm}</per-minute>
        </metronome></direction-type><sound tempo="{bpm}"/></direction>
      <note><pitch><step>C</step><octave>4</octave></pitch><duration>1</duration><type>quarter</type>
        <lyric number="1"><syllabic>begin</syllabic><text>A</text><extend/></lyric></note>
      <note><pitch><step>D</step><octave>4</octave></pitch><duration>1</duration><type>quarter</type></note>
      <note><pitch><step>E</step><octave>4</octave></pitch><duration>1</duration><type>quarter</type>
        <lyric number="1"><syllabic>end</syllabic><text>men</text></lyric></note>
      <note><rest/><duration>1</duration><type>quarter</type></note>
    </measure>
    <measure number="2">
      <note><pitch><step>G</step><octave>4</octave></pitch><duration>2</duration><type>half</type>
        <tie type="start"/><lyric number="1"><syllabic>single</syllabic><text>sing</text></lyric></note>
      <note><pitch><step>G</step><octave>4</octave></pitch><duration>2</duration><type>half</type>
        <tie type="stop"/></note>
    </measure>
    <measure number="3">
      <note><pitch><step>A</step><octave>4</octave></pitch><duration>2</duration><type>half</type>
        <lyric number="1"><syllabic>single</syllabic><text>la</text></lyric></note>
      <note><chord/><pitch><step>C</step><octave>5</octave></pitch><duration>2</duration><type>half</type></note>
      <note><rest/><duration>2</duration><type>half</type></note>
    </measure>
  </part>
</score-partwise>
"""


def write_musicxml(path, bpm=120):
    path.write_text(MUSICXML.format(bpm=bpm))
    return path


# --------------------------------------------------------------------------- events


def test_event_constructors_and_order():
    evs = [
        Event.note_on(1.0, 60),
        Event.note_off(1.0, 59),
        Event.control_change(1.0, 1, 64),
        Event.pitch_bend(0.5, 2.0),
        Event.lyric(1.0, "la"),
        Event.tempo(0.0, 90),
    ]
    evs.sort(key=lambda e: e.sort_key)
    assert [e.kind for e in evs] == ["tempo", "pitch_bend", "note_off", "control", "lyric", "note_on"]
    assert evs[1].value == 1.0  # bends clamp to -1..1
    assert Event.note_on(0.5, 60).sample(16000) == 8000
    with pytest.raises(ValueError, match="kind"):
        Event(0.0, "noteon")
    with pytest.raises(ValueError, match="finite"):
        Event.note_on(float("nan"), 60)


def test_top_line():
    notes = [
        Note(0, 1, 60),
        Note(0, 1, 64),
        Note(0, 1, 67),  # a chord: the top note
        Note(1, 2, 62),
        Note(1.5, 2.5, 65),  # a higher note interrupts
        Note(3, 4, 70),
        Note(3.2, 3.8, 66),  # an inner voice under a held note
        Note(5, 6.05, 69),
        Note(6.0, 7, 67),
    ]  # overlapping legato, lower successor
    line = top_line(notes)
    assert [(n.start, n.end, n.pitch) for n in line] == [
        (0, 1, 67),
        (1, 1.5, 62),
        (1.5, 2.5, 65),
        (3, 4, 70),
        (5, 6.0, 69),
        (6.0, 7, 67),
    ]


# --------------------------------------------------------------------------- MIDI


def test_midi_lyrics_tempo_and_melisma(tmp_path):
    p = write_midi(
        tmp_path / "a.mid",
        [[(0, 1, 60, "Twin-"), (1, 1, 62, "kle"), (2, 1, 64, None), (3, 2, 65, "star")]],
        tempo=1_000_000,
    )  # 60 BPM
    song = read_midi(p)
    assert [n.pitch for n in song.notes] == [60, 62, 64, 65]
    assert [(n.start, n.end) for n in song.notes] == [(0, 1), (1, 2), (2, 3), (3, 5)]
    assert song.has_lyrics
    s = [n.syllable for n in song.notes]
    assert s[0].phones == ("T", "W", "IH", "NG") and s[1].phones == ("K", "AH", "L")
    assert s[2].melisma
    assert s[3].phones == ("S", "T", "AA", "R")
    assert song.duration == 5


def test_midi_tempo_change(tmp_path):
    m = mido.MidiFile(ticks_per_beat=100)
    tr = mido.MidiTrack()
    m.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=500000, time=0))  # 120 BPM
    tr.append(mido.Message("note_on", note=60, velocity=80, time=0))
    tr.append(mido.Message("note_off", note=60, time=200))  # 2 beats = 1 s
    tr.append(mido.MetaMessage("set_tempo", tempo=1000000, time=0))  # 60 BPM
    tr.append(mido.Message("note_on", note=62, velocity=80, time=0))
    tr.append(mido.Message("note_off", note=62, time=100))  # 1 beat = 1 s
    m.save(str(tmp_path / "t.mid"))
    song = read_midi(tmp_path / "t.mid")
    assert [(n.start, n.end) for n in song.notes] == [(0, 1), (1, 2)]
    assert not song.has_lyrics and all(n.syllable is None for n in song.notes)


def test_midi_track_channel_and_drums(tmp_path):
    p = write_midi(
        tmp_path / "multi.mid",
        [
            [(0, 1, 72, None, 9), (1, 1, 74, None, 9)],  # drums (channel 10) in track 0
            [(0, 2, 60, None, 0)],  # track 1, channel 1
            [(0, 1, 55, None, 2), (1, 1, 57, None, 3)],  # track 2, channels 3 and 4
        ],
    )
    assert [n.pitch for n in read_midi(p).notes] == [60]  # drums ignored, top line
    assert [n.pitch for n in read_midi(p, track=2).notes] == [55, 57]
    assert [n.pitch for n in read_midi(p, track=2, channel=4).notes] == [57]
    assert [n.pitch for n in read_midi(p, channel=10).notes] == [72, 74]
    with pytest.raises(SongError, match="no track 7"):
        read_midi(p, track=7)
    with pytest.raises(SongError, match=r"multi\.mid: no notes in track 1, channel 5"):
        read_midi(p, track=1, channel=5)


def test_midi_lyric_track_is_chosen(tmp_path):
    # an accompaniment track with higher notes, and the melody with its lyrics
    p = write_midi(tmp_path / "song.mid", [[(0, 4, 84, None, 1)], [(0, 1, 60, "hel-", 0), (1, 1, 62, "lo", 0)]])
    song = read_midi(p)
    assert [n.pitch for n in song.notes] == [60, 62]
    assert [n.syllable.phones for n in song.notes] == [("HH", "AH"), ("L", "OW")]


def test_karaoke_text_events(tmp_path):
    p = write_midi(
        tmp_path / "song.kar",
        [
            [
                (0, 1, 60, "@KMIDI KARAOKE FILE"),
                (1, 1, 62, "/Hap"),
                (2, 1, 64, "py "),
                (3, 1, 65, "birth"),
                (4, 1, 67, "day "),
            ]
        ],
        kar_text=True,
    )
    song = read_song(p)
    assert song.has_lyrics
    # the '@' header is not sung; Hap+py and birth+day are words of two syllables each
    assert song.notes[0].syllable is None
    assert [n.syllable.phones for n in song.notes[1:]] == [("HH", "AE"), ("P", "IY"), ("B", "ER", "TH"), ("D", "EY")]


def test_bad_files(tmp_path):
    with pytest.raises(SongError, match=r"nope\.mid: no such file"):
        read_song(tmp_path / "nope.mid")
    (tmp_path / "empty.mid").write_bytes(b"")
    with pytest.raises(SongError, match=r"empty\.mid: empty file"):
        read_song(tmp_path / "empty.mid")
    good = write_midi(tmp_path / "good.mid", [[(0, 1, 60, "la")]]).read_bytes()
    (tmp_path / "trunc.mid").write_bytes(good[:30])
    with pytest.raises(SongError, match=r"trunc\.mid: truncated MIDI file"):
        read_song(tmp_path / "trunc.mid")
    (tmp_path / "text.mid").write_text("this is not music\n")
    with pytest.raises(SongError, match=r"text\.mid: not a MIDI file"):
        read_song(tmp_path / "text.mid")
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(SongError, match=r"x\.txt: not a MIDI or MusicXML file"):
        read_song(tmp_path / "x.txt")
    (tmp_path / "h.xml").write_text("<html><body/></html>")
    with pytest.raises(SongError, match=r"h\.xml: an XML file but not MusicXML"):
        read_song(tmp_path / "h.xml")
    (tmp_path / "broken.musicxml").write_text("<?xml version='1.0'?><score-partwise><part id='P1'>")
    with pytest.raises(SongError, match=r"broken\.musicxml: "):
        read_song(tmp_path / "broken.musicxml")
    with pytest.raises(SongError, match="is a directory"):
        read_song(tmp_path)


# --------------------------------------------------------------------------- MusicXML


def test_musicxml_lyrics_melisma_ties_chords(tmp_path):
    song = read_song(write_musicxml(tmp_path / "amen.musicxml", bpm=60))
    # C4 D4 E4 (rest) G4 tied over two halves, A4 with a C5 on top (the top line)
    assert [(n.pitch, n.start, n.end) for n in song.notes] == [
        (60, 0, 1),
        (62, 1, 2),
        (64, 2, 3),
        (67, 4, 8),
        (72, 8, 10),
    ]
    s = [n.syllable for n in song.notes]
    assert s[0].nucleus == "EY" and s[0].text == "A"  # "A-" of A-men (cmudict: EY M EH N)
    assert s[1].melisma  # the extension carries on
    assert s[2].phones == ("M", "EH", "N")
    assert s[3].phones == ("S", "IH", "NG")
    assert s[4].phones == ("L", "AA")
    fast = read_musicxml(write_musicxml(tmp_path / "fast.musicxml", bpm=120))
    assert fast.notes[3].start == 2.0 and fast.duration == 5.0


# --------------------------------------------------------------------------- lyrics


def test_lyrics_dictionary_and_fallback():
    assert lyrics.word_phones("Star,") == ["S", "T", "AA", "R"]
    unknown = lyrics.word_phones("blorptastic")
    assert unknown and all(p in lyrics.PHONEMES for p in unknown)
    sy = lyrics.syllabify(lyrics.word_phones("monster"))
    assert [s.phones for s in sy] == [("M", "AA", "N"), ("S", "T", "ER")]
    assert [s.phones for s in lyrics.word_syllables("extra")] == [("EH", "K"), ("S", "T", "R", "AH")]
    assert lyrics.syllabify([])[0].nucleus == lyrics.DEFAULT_VOWEL
    assert lyrics.syllabify(["HH", "M"])[0].nucleus == "M"  # "hmm": a syllabic consonant


def test_text_syllables():
    s = lyrics.text_syllables("Twin-kle little star _ ooh")
    assert [x.phones for x in s[:4]] == [("T", "W", "IH", "NG"), ("K", "AH", "L"), ("L", "IH"), ("T", "AH", "L")]
    assert s[4].phones == ("S", "T", "AA", "R") and s[5].melisma and s[6].phones == ("UW",)
    assert lyrics.text_syllables("  - , ") == []
