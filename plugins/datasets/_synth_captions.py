"""Caption templates of the ``synthetic`` dataset: five varied captions per clip.

Each event type has several noun phrases (with a plural), every attribute several synonyms, and a
clip's sentence is assembled from one of several frames (plain clause, counted noun phrase,
"there are ...", background as subject, position first, ...). Each of the five captions draws its
own level of detail, so some mention loudness, duration, count, position or background and others
leave them out, as human captions do; the event types themselves are always named (a quiet event
of a multi-event clip is occasionally left out, as people miss faint sounds).

The attribute words were chosen to be far apart for a sentence encoder: "high-pitched" vs "low" vs
"mid-pitched", "rising" vs "falling", "slow" vs "rapid", "loud" vs "faint", counts spelled out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench_plugins.datasets._synth_events import STREAM_CAPTIONS, ClipSpec, EventSpec, clip_rng

N_CAPTIONS = 5


@dataclass(frozen=True)
class Lexeme:
    """How captions name one event type."""

    heads: tuple[tuple[str, str], ...]  # (singular, plural) noun phrases
    verbs: tuple[tuple[str, str], ...] = (("sounds", "sound"), ("is heard", "are heard"),
                                          ("plays", "play"))


LEXICON: dict[str, Lexeme] = {
    "tone_low": Lexeme((("low-pitched tone", "low-pitched tones"), ("low beep", "low beeps"),
                        ("deep tone", "deep tones"), ("low-frequency beep", "low-frequency beeps"))),
    "tone_mid": Lexeme((("mid-pitched beep", "mid-pitched beeps"), ("medium-pitched tone", "medium-pitched tones"),
                        ("beep of medium pitch", "beeps of medium pitch"), ("mid-range tone", "mid-range tones"))),
    "tone_high": Lexeme((("high-pitched beep", "high-pitched beeps"), ("high tone", "high tones"),
                         ("shrill beep", "shrill beeps"),
                         ("piercing high-pitched tone", "piercing high-pitched tones"))),
    "chirp_up": Lexeme((("rising chirp", "rising chirps"), ("upward sweep", "upward sweeps"),
                        ("rising whistle", "rising whistles"), ("tone sweeping upward", "tones sweeping upward"))),
    "chirp_down": Lexeme((("falling chirp", "falling chirps"), ("downward sweep", "downward sweeps"),
                          ("falling whistle", "falling whistles"),
                          ("tone sliding downward", "tones sliding downward"))),
    "noise_white": Lexeme((("burst of white noise", "bursts of white noise"), ("blast of static", "blasts of static"),
                           ("white noise burst", "white noise bursts"),
                           ("harsh burst of static", "harsh bursts of static"))),
    "noise_pink": Lexeme((("burst of pink noise", "bursts of pink noise"), ("whoosh like wind", "whooshes like wind"),
                          ("pink noise burst", "pink noise bursts"), ("rushing whoosh", "rushing whooshes"))),
    "noise_brown": Lexeme((("burst of brown noise", "bursts of brown noise"), ("deep rumble", "deep rumbles"),
                           ("rumbling noise", "rumbling noises"), ("rumble of brown noise", "rumbles of brown noise"))),
    "clicks_slow": Lexeme((("slow train of clicks", "slow trains of clicks"),
                           ("slow ticking sequence", "slow ticking sequences"),
                           ("series of slow clicks", "series of slow clicks"),
                           ("slow ticking sound", "slow ticking sounds"))),
    "clicks_fast": Lexeme((("rapid train of clicks", "rapid trains of clicks"),
                           ("fast clicking rattle", "fast clicking rattles"),
                           ("series of rapid clicks", "series of rapid clicks"),
                           ("rapid ratchet-like clicking sound", "rapid ratchet-like clicking sounds"))),
    "tremolo": Lexeme((("wavering tone", "wavering tones"), ("tremolo tone", "tremolo tones"),
                       ("pulsing tone", "pulsing tones"),
                       ("tone that wobbles in volume", "tones that wobble in volume"))),
    "buzz": Lexeme((("harsh buzz", "harsh buzzes"), ("electric buzz", "electric buzzes"),
                    ("buzzing sound", "buzzing sounds"), ("raspy buzzer", "raspy buzzers"))),
    "knock": Lexeme((("knock", "knocks"), ("sharp knock", "sharp knocks"), ("wooden knock", "wooden knocks"),
                     ("knock on a door", "knocks on a door")),
                    (("sounds", "sound"), ("is heard", "are heard"), ("rings out", "ring out"))),
    "siren": Lexeme((("wailing siren", "wailing sirens"), ("siren-like wail", "siren-like wails"),
                     ("warbling alarm", "warbling alarms"), ("wailing alarm tone", "wailing alarm tones"))),
    "bell": Lexeme((("bell", "bells"), ("ringing bell", "ringing bells"), ("chime", "chimes"),
                    ("bell-like chime", "bell-like chimes")),
                   (("rings", "ring"), ("chimes", "chime"), ("sounds", "sound"), ("is heard", "are heard"))),
}

LOUDNESS = {"loud": ("loud", "strong", "powerful"), "quiet": ("quiet", "faint", "soft")}
DURATION = {"short": ("short", "brief", "quick"), "long": ("long", "sustained", "drawn-out")}
COUNT_WORD = {2: "two", 3: "three", 4: "four"}
COUNT_ADVERB = {1: ("once", "one time"), 2: ("twice", "two times"), 3: ("three times",), 4: ("four times",)}
POSITION = {
    "start": ("at the start", "at the beginning", "early in the clip", "right at the beginning"),
    "middle": ("in the middle", "midway through", "halfway through", "in the middle of the recording"),
    "end": ("at the end", "near the end", "toward the end", "at the end of the recording"),
}
POSITION_LEAD = {
    "start": ("At the start,", "At first,", "In the beginning,", "Early on,"),
    "middle": ("In the middle,", "Midway through,", "Halfway through,"),
    "end": ("At the end,", "Near the end,", "Toward the end,", "Finally,"),
}
# Background phrases avoid the attribute words ("quiet", "faint", "soft", "low", "static"), so a
# text encoder does not confuse a quiet hiss with a quiet event or a hum with a low tone.
BACKGROUND = {
    "hiss": ("over a steady hiss", "with hiss in the background", "against a constant background hiss",
             "over a gentle hiss"),
    "hum": ("over an electrical hum", "with a hum in the background", "against a steady mains hum",
            "over a constant hum"),
    "silence": ("in near silence", "against a silent background", "in an otherwise silent recording",
                "with nothing else audible"),
}
BACKGROUND_SUBJECT = {
    "hiss": ("A steady hiss", "Background hiss", "A constant hiss"),
    "hum": ("An electrical hum", "A steady mains hum", "A constant hum"),
    "silence": ("Near silence", "A silent background", "Silence"),
}


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _article(phrase: str) -> str:
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


@dataclass
class _Detail:
    loudness: bool
    duration: bool
    count: bool
    position: bool


def _adjectives(rng: np.random.Generator, e: EventSpec, d: _Detail) -> str:
    adj = []
    if d.loudness:
        adj.append(_pick(rng, LOUDNESS[e.loudness]))
    if d.duration and e.duration is not None:
        adj.append(_pick(rng, DURATION[e.duration]))
    if len(adj) == 2:
        return (", " if rng.random() < 0.5 else " and ").join(adj) + " "
    return adj[0] + " " if adj else ""


def _head(rng: np.random.Generator, e: EventSpec) -> tuple[str, str]:
    heads = LEXICON[e.type].heads
    return heads[int(rng.integers(len(heads)))]


def _verb(rng: np.random.Generator, e: EventSpec, head: str) -> tuple[str, str]:
    verbs = LEXICON[e.type].verbs
    if "sound" in head:  # no "a buzzing sound sounds"
        verbs = tuple(v for v in verbs if not v[0].startswith("sound")) or (("is heard", "are heard"),)
    return verbs[int(rng.integers(len(verbs)))]


def _noun_phrase(rng: np.random.Generator, e: EventSpec, d: _Detail,
                 head: tuple[str, str] | None = None) -> str:
    """'three loud high-pitched beeps', 'a single faint bell' or (count omitted) 'a bell'."""
    sg, pl = head or _head(rng, e)
    adj = _adjectives(rng, e, d)
    if d.count and e.repetitions > 1:
        return f"{COUNT_WORD[e.repetitions]} {adj}{pl}"
    if d.count and rng.random() < 0.5:
        return f"a single {adj}{sg}"
    return _article(adj + sg)


def _clause(rng: np.random.Generator, e: EventSpec, d: _Detail) -> str:
    """A clause about one event, e.g. 'a loud high-pitched beep sounds three times'."""
    head = _head(rng, e)
    verb_sg, verb_pl = _verb(rng, e, head[0])
    frame = int(rng.integers(3))
    if frame == 0 or (not d.count) or e.repetitions == 1 and frame == 1:
        sg = head[0]
        np_ = _article(_adjectives(rng, e, d) + sg)
        if d.count and e.repetitions > 1 and rng.random() < 0.3:
            verb_sg = _pick(rng, ("repeats", "is repeated"))
        count = f" {_pick(rng, COUNT_ADVERB[e.repetitions])}" if d.count and (
            e.repetitions > 1 or rng.random() < 0.4) else ""
        text = f"{np_} {verb_sg}{count}"
    elif frame == 1:
        text = f"{_noun_phrase(rng, e, d, head)} {verb_pl}"
    else:
        np_ = _noun_phrase(rng, e, d, head)
        text = f"there {'are' if d.count and e.repetitions > 1 else 'is'} {np_}"
    if d.position:
        text += " " + _pick(rng, POSITION[e.position])
    return text


def _capitalise(s: str) -> str:
    return s[:1].upper() + s[1:]


def _caption(rng: np.random.Generator, spec: ClipSpec, level: float) -> str:
    events = list(spec.events)
    quiet = [i for i, e in enumerate(events) if e.loudness == "quiet"]
    if len(events) > 1 and quiet and rng.random() < 0.1:
        del events[quiet[int(rng.integers(len(quiet)))]]
    # Captions of busy clips drop more details, so they stay about as long as Clotho's.
    level *= (1.0, 0.75, 0.5)[len(events) - 1]
    details = []
    for e in events:
        # A position is not worth naming when the event fills most of the clip.
        positional = e.span_s < 0.5 * spec.duration_s
        details.append(_Detail(loudness=rng.random() < level, duration=rng.random() < level,
                               count=rng.random() < min(1.0, level + 0.2),
                               position=positional and rng.random() < level * 0.8))
    with_bg = rng.random() < level * (0.7 if len(events) < 3 else 0.4)
    bg = _pick(rng, BACKGROUND[spec.background])

    if len(events) == 1:
        e, d = events[0], details[0]
        frame = int(rng.integers(4))
        if frame == 1 and d.position:
            d.position = False
            lead = _pick(rng, POSITION_LEAD[e.position])
            text = f"{lead} {_clause(rng, e, d)}" + (f" {bg}" if with_bg else "")
        elif frame == 2 and with_bg:
            subject = _pick(rng, BACKGROUND_SUBJECT[spec.background])
            pos = f" {_pick(rng, POSITION[e.position])}" if d.position else ""
            link = _pick(rng, ("is interrupted by", "continues as", "with"))
            if link == "continues as":
                text = f"{subject} continues as {_clause(rng, e, d)}"
            else:
                text = f"{subject} {link} {_noun_phrase(rng, e, d)}{pos}"
        elif frame == 3:
            pos = f" {_pick(rng, POSITION[e.position])}" if d.position else ""
            text = _capitalise(_noun_phrase(rng, e, d)) + pos + (f", {bg}" if with_bg else "")
        else:
            text = _clause(rng, e, d) + (f" {bg}" if with_bg else "")
        return _capitalise(text) + "."

    frame = int(rng.integers(5))
    if frame >= 3:
        # Noun phrases only ("Two knocks, then a falling chirp at the end"): the compact form
        # keeps three-event captions within a text encoder's usual 32 tokens.
        phrases = []
        for e, d in zip(events, details):
            phrase = _noun_phrase(rng, e, d)
            if d.position:
                phrase += " " + _pick(rng, POSITION[e.position])
            phrases.append(phrase)
        joiner = _pick(rng, (", then ", " followed by ", ", after that "))
        text = joiner.join(phrases)
    else:
        clauses = [_clause(rng, e, d) for e, d in zip(events, details)]
        if frame == 0:
            text = ", then ".join(clauses)
        elif frame == 1:
            text = "first " + ", then ".join(clauses[:-1]) + f", and finally {clauses[-1]}"
        else:
            text = ", ".join(clauses[:-1]) + f" and then {clauses[-1]}"
    if with_bg:
        text = (f"{_capitalise(bg)}, {text}" if rng.random() < 0.3 else f"{text}, {bg}")
    return _capitalise(text) + "."


def make_captions(spec: ClipSpec) -> list[str]:
    """Five distinct captions of a clip, drawn from the clip's caption stream."""
    rng = clip_rng(spec.seed, spec.split_code, spec.index, STREAM_CAPTIONS)
    captions: list[str] = []
    for _ in range(N_CAPTIONS):
        level = float(rng.uniform(0.35, 0.95))
        for _ in range(20):  # five different sentences, as five annotators would write
            c = _caption(rng, spec, level)
            if c not in captions:
                break
        captions.append(c)
    return captions
