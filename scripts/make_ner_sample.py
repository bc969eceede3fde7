"""Write data/sample/ner/{train,dev,test}.txt: a small English NER sample composed for knnie.

Sentences come from templates and name lists written by hand for knnie (no corpus text),
tagged PER/LOC/ORG in BIO, CoNLL two-column format. Deterministic (seed 7)."""

from __future__ import annotations

import random
import re
from pathlib import Path

PER = ["Anna Keller", "Tom Baker", "Maria Lopez", "John Smith", "Li Wei", "Sara Novak", "Peter Olsen",
       "Nadia Haddad", "Omar Farouk", "Julia Brandt", "Kenji Sato", "Emma Wilson", "Lucas Moreau", "Ivan Petrov",
       "Grace Obi", "Hannah Cole", "David Levy", "Priya Nair", "Carlos Ruiz", "Elena Rossi"]
LOC = ["Berlin", "Paris", "Lagos", "Tokyo", "Lima", "Oslo", "New York", "Cairo", "Madrid", "Toronto", "Nairobi",
       "Buenos Aires", "Vienna", "Hanoi", "Dublin", "Seoul", "Lisbon", "Cape Town", "Denver", "Kyoto"]
ORG = ["Siemens", "United Nations", "Acme Corp", "Red Cross", "Nordbank", "Green Energy Ltd", "Oxford University",
       "World Bank", "Bluewave Media", "Tata Steel", "Atlas Airlines", "Helios Labs", "Central Bank",
       "Orion Foods", "Vega Motors", "Kestrel Systems", "Pioneer Press", "Summit Health", "Delta Logistics",
       "Polar Research Institute"]
TEMPLATES = [
    "{PER} moved to {LOC} last year .", "{PER} works for {ORG} in {LOC} .", "{ORG} opened a new office in {LOC} .",
    "Yesterday {PER} met {PER} in {LOC} .", "{PER} , a spokesman for {ORG} , declined to comment .",
    "The mayor of {LOC} welcomed {PER} on Monday .", "{ORG} hired {PER} as its new chief executive .",
    "Shares of {ORG} rose sharply after the report .", "{PER} was born in {LOC} and studied there .",
    "Flights from {LOC} to {LOC} were cancelled because of the storm .", "{ORG} and {ORG} signed a deal on Friday .",
    "Police in {LOC} said {PER} had been released .", "{PER} said the talks with {ORG} went well .",
    "A report by {ORG} praised the schools of {LOC} .", "{PER} scored twice as {LOC} won the final .",
    "Officials from {ORG} will visit {LOC} next week .", "{PER} left {ORG} after ten years .",
    "Thousands of people marched through {LOC} on Sunday .", "The new bridge in {LOC} was built by {ORG} .",
    "{PER} thanked {PER} for the help .", "According to {PER} , prices in {LOC} will fall .",
    "{ORG} reported a loss for the third quarter .", "{PER} is the new coach of the team from {LOC} .",
    "Rain is expected in {LOC} and {LOC} tomorrow .", "{PER} joined {ORG} in {LOC} in March .",
    "Nobody answered the phone at {ORG} .", "It was a quiet day in {LOC} .", "{PER} wrote a book about {LOC} .",
    "The museum in {LOC} received a gift from {ORG} .", "We talked about the weather and the news .",
]


def sentence(template: str, rng: random.Random, pools: dict[str, list[str]]) -> list[tuple[str, str]]:
    rows = []
    for part in re.split(r"(\{\w+\})", template):
        if part.startswith("{"):
            typ = part[1:-1]
            words = rng.choice(pools[typ]).split()
            rows += [(w, ("B-" if i == 0 else "I-") + typ) for i, w in enumerate(words)]
        else:
            rows += [(w, "O") for w in part.split()]
    return rows


def main() -> None:
    rng = random.Random(7)
    out = Path(__file__).parents[1] / "data" / "sample" / "ner"
    seen = {"PER": PER[:14], "LOC": LOC[:14], "ORG": ORG[:14]}
    everything = {"PER": PER, "LOC": LOC, "ORG": ORG}  # dev/test also use names never seen in train
    for split, n, pools in (("train", 120, seen), ("dev", 40, everything), ("test", 40, everything)):
        sentences = [sentence(TEMPLATES[i % len(TEMPLATES)], rng, pools) for i in range(n)]
        rng.shuffle(sentences)
        text = "\n\n".join("\n".join(f"{w} {t}" for w, t in s) for s in sentences)
        (out / f"{split}.txt").write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
