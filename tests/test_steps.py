"""Step splitting on real rationales from ../shared/data, and character-to-token span mapping."""

from __future__ import annotations

import json

import pytest
from transformers import AutoTokenizer

from kpod.data.steps import char_spans_to_token_spans, split_steps

# (rationale, expected steps, expected answer sentence); rationales verbatim from ../shared/data.
CASES = [
    # rationales/gsm8k_llama3-70b.json
    ("First, find the price after the first month: 1000 - 10% of 1000 = 1000 - 100 = 900. Then, find the price "
     "after the second month: 900 - 20% of 900 = 900 - 180 = 720. The answer is 720",
     ["First, find the price after the first month: 1000 - 10% of 1000 = 1000 - 100 = 900.",
      "Then, find the price after the second month: 900 - 20% of 900 = 900 - 180 = 720."], "The answer is 720"),
    ("Mr. Martinez is 2 feet taller than Chiquita, so his height is 5 + 2 = 7 feet. Combined height is 5 + 7 = 12 "
     "feet. The answer is 12",
     ["Mr. Martinez is 2 feet taller than Chiquita, so his height is 5 + 2 = 7 feet.",
      "Combined height is 5 + 7 = 12 feet."], "The answer is 12"),
    ("Mr. Llesis kept 50 * 7/10 = 35 kilograms. Mr. Everest has 50 - 35 = 15 kilograms. The difference is 35 - 15 "
     "= 20 kilograms. The answer is 20",
     ["Mr. Llesis kept 50 * 7/10 = 35 kilograms.", "Mr. Everest has 50 - 35 = 15 kilograms.",
      "The difference is 35 - 15 = 20 kilograms."], "The answer is 20"),
    ("First, find half of the students in Mrs. Finley's class: 24 / 2 = 12. Mr. Johnson's class has 10 more than "
     "that, so 12 + 10 = 22. The answer is 22",
     ["First, find half of the students in Mrs. Finley's class: 24 / 2 = 12.",
      "Mr. Johnson's class has 10 more than that, so 12 + 10 = 22."], "The answer is 22"),
    ("First, calculate the time from 6:00 a.m. to 9:00 a.m.: 3 hours = 3 * 60 = 180 minutes. Subtract the 40 "
     "minutes to the first station: 180 - 40 = 140 minutes. The answer is 140",
     ["First, calculate the time from 6:00 a.m. to 9:00 a.m.: 3 hours = 3 * 60 = 180 minutes.",
      "Subtract the 40 minutes to the first station: 180 - 40 = 140 minutes."], "The answer is 140"),
    ("First, find the time it takes Mark to get to the national park. 1 hour * 3 = 3 hours. Since Rob leaves at 11 "
     "a.m., Mark should leave at 11 - 3 = 8 a.m. The answer is 9",
     ["First, find the time it takes Mark to get to the national park.", "1 hour * 3 = 3 hours.",
      "Since Rob leaves at 11 a.m., Mark should leave at 11 - 3 = 8 a.m."], "The answer is 9"),
    ("400 * 300 = 120,000 carrots total. 120,000 / 20 hours = 6,000 carrots per hour. The answer is 6,000",
     ["400 * 300 = 120,000 carrots total.", "120,000 / 20 hours = 6,000 carrots per hour."], "The answer is 6,000"),
    ("Total cost is 4.50 + 4.50 + 3.00 + 4.00 + 2.50 + 2.50 = 21. The answer is 21",
     ["Total cost is 4.50 + 4.50 + 3.00 + 4.00 + 2.50 + 2.50 = 21."], "The answer is 21"),
    ("Add up the temperatures: -36 + 13 + (-15) + (-10) = -48. Divide by 4: -48 / 4 = -12. The answer is -12",
     ["Add up the temperatures: -36 + 13 + (-15) + (-10) = -48.", "Divide by 4: -48 / 4 = -12."],
     "The answer is -12"),
    # rationales/gsm8k_gemini-1.5-flash.json: money, run-on sentences, line breaks, double spaces
    (" The steaks cost 4.5 * $15.00 = $67.50. The chicken breasts cost 1.5 * $8.00 = $12.00. In total, she spent "
     "$67.50 + $12.00 = $79.50. The answer is 79.5",
     ["The steaks cost 4.5 * $15.00 = $67.50.", "The chicken breasts cost 1.5 * $8.00 = $12.00.",
      "In total, she spent $67.50 + $12.00 = $79.50."], "The answer is 79.5"),
    ("Mairead walked 3/5 * 40 = 24 miles. Mairead jogged 24 / 5 = 4.8 miles. The total distance Mairead covered is "
     "40 + 24 + 4.8 = 68.8 miles.The answer is 68.8",
     ["Mairead walked 3/5 * 40 = 24 miles.", "Mairead jogged 24 / 5 = 4.8 miles.",
      "The total distance Mairead covered is 40 + 24 + 4.8 = 68.8 miles."], "The answer is 68.8"),
    ("37 - 15 = 22 jellybeans remaining. 22 + 5 = 27 jellybeans.27 - 4 = 23 jellybeans. The answer is 23",
     ["37 - 15 = 22 jellybeans remaining.", "22 + 5 = 27 jellybeans.", "27 - 4 = 23 jellybeans."],
     "The answer is 23"),
    ("20 - 2 = 18\n 18 + 1 = 19\n The answer is 19", ["20 - 2 = 18", "18 + 1 = 19"], "The answer is 19"),
    ("24 = (1/2) * base * 8\n 24 = 4 * base\n base = 24 / 4\n The answer is 6",
     ["24 = (1/2) * base * 8", "24 = 4 * base", "base = 24 / 4"], "The answer is 6"),
    ("Mr. Rainwater has 4 * 9 = 36 goats.  He has 36 / 2 = 18 chickens.  The answer is 18",
     ["Mr. Rainwater has 4 * 9 = 36 goats.", "He has 36 / 2 = 18 chickens."], "The answer is 18"),
    ("Bobby has 2 * 6 = 12 slices of pizza. Mrs. Kaplan has 12 * (1/4) = 3 slices.  The answer is 3",
     ["Bobby has 2 * 6 = 12 slices of pizza.", "Mrs. Kaplan has 12 * (1/4) = 3 slices."], "The answer is 3"),
    # gsm8k/train.jsonl reference solutions: "#### N" is the answer part
    ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether in "
     "April and May.\n#### 72",
     ["Natalia sold 48/2 = <<48/2=24>>24 clips in May.",
      "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May."], "#### 72"),
    ("The price per 500 mL milk from the 2 packs is $2.50/2 = $<<2.5/2=1.25>>1.25.\nThis means that for each pack "
     "of 500 mL milk, you can save $1.30 - $1.25 = $0.05.\n#### 1",
     ["The price per 500 mL milk from the 2 packs is $2.50/2 = $<<2.5/2=1.25>>1.25.",
      "This means that for each pack of 500 mL milk, you can save $1.30 - $1.25 = $0.05."], "#### 1"),
    # rationales/svamp_gpt-3.5-turbo.json and asdiv_gpt-3.5-turbo.json: no answer sentence
    ("Danny found a total of 15 + 18 = 33 bottle caps and wrappers at the park.\nAdding that amount to his "
     "collection, Danny now has 67 + 33 = 100 wrappers.\nHe also now has 35 + 33 = 68 bottle caps.\nThus, there "
     "are 100 - 68 = 32 more wrappers than bottle caps.",
     ["Danny found a total of 15 + 18 = 33 bottle caps and wrappers at the park.",
      "Adding that amount to his collection, Danny now has 67 + 33 = 100 wrappers.",
      "He also now has 35 + 33 = 68 bottle caps.", "Thus, there are 100 - 68 = 32 more wrappers than bottle caps."],
     None),
    ("Each candy bar cost $ 0.30 ($ 3 divided by 10). Dan spent $ 3, so he has $ 1 left.",
     ["Each candy bar cost $ 0.30 ($ 3 divided by 10).", "Dan spent $ 3, so he has $ 1 left."], None),
    ("To find out how much Lewis earns during the harvest season, we multiply his weekly earnings by the number of "
     "weeks he works. \n\n$1367 x 5 = $6835. \n\nTherefore, Lewis earns a total of $6,835.00 during the harvest "
     "season.",
     ["To find out how much Lewis earns during the harvest season, we multiply his weekly earnings by the number "
      "of weeks he works.", "$1367 x 5 = $6835.",
      "Therefore, Lewis earns a total of $6,835.00 during the harvest season."], None),
    ("In order to find out how much each DVD cost to rent, we can divide the total amount paid ($4.80) by the "
     "number of DVDs rented (4).\n\n(4.80/4) = $1.20\n\nTherefore, each DVD cost $1.20 to rent.",
     ["In order to find out how much each DVD cost to rent, we can divide the total amount paid ($4.80) by the "
      "number of DVDs rented (4).", "(4.80/4) = $1.20", "Therefore, each DVD cost $1.20 to rent."], None),
    # rationales/csqa_llama3-70b.json
    ("Sammy wants to go where people are, so he'll go to a place with many people. This is the definition of "
     "populated areas. The answer is B",
     ["Sammy wants to go where people are, so he'll go to a place with many people.",
      "This is the definition of populated areas."], "The answer is B"),
    ("The question asks when the killing ends in a war. The answer is when every person dies. The answer is E",
     ["The question asks when the killing ends in a war.", "The answer is when every person dies."],
     "The answer is E"),
    # kpod's own training format: a rationale, then "Therefore, the answer is N."
    ("Tom starts with 12 apples. He buys 30 more, so 12 + 30 = 42. Therefore, the answer is 42.",
     ["Tom starts with 12 apples.", "He buys 30 more, so 12 + 30 = 42."], "Therefore, the answer is 42."),
    # a numbered list: the "1." marker is not a sentence end
    ("1. Mr. Smith paid $1.50 for 3.5 pounds, e.g. apples.\n2. He paid 1,000.25 dollars.\nThe answer is 1,000.25",
     ["1. Mr. Smith paid $1.50 for 3.5 pounds, e.g. apples.", "2. He paid 1,000.25 dollars."],
     "The answer is 1,000.25"),
]


@pytest.mark.parametrize("text,steps,answer", CASES)
def test_split_steps(text, steps, answer):
    split = split_steps(text)
    assert [text[s:e] for s, e in split.steps] == steps
    assert (text[slice(*split.answer)] if split.answer else None) == answer


def test_empty_and_answer_only():
    assert split_steps("").steps == [] and split_steps("").answer is None
    split = split_steps("  The answer is 7\n")
    assert split.steps == [] and split.answer == (2, 17)


def test_spans_are_trimmed_ordered_and_disjoint_on_real_rationales(shared_data):
    records = json.loads((shared_data / "rationales" / "asdiv_gpt-3.5-turbo.json").read_text())[:500]
    for record in records:
        text = record["chain"]
        split = split_steps(text)
        spans = split.steps + ([split.answer] if split.answer else [])
        assert spans, text
        for (s, e), (s2, _) in zip(spans, spans[1:]):
            assert e <= s2
        for s, e in spans:
            assert e > s and not text[s].isspace() and not text[e - 1].isspace()
        # nothing but whitespace is left outside the spans
        covered = "".join(text[s:e] for s, e in spans)
        assert covered.replace(" ", "") == "".join(text.split()).replace(" ", "")


def test_char_spans_to_token_spans_by_hand():
    # tokens: <s> "Tom" " has" " 3" "." " He" " ate" " 1" "." </s>
    offsets = [(0, 0), (0, 3), (3, 7), (7, 9), (9, 10), (10, 13), (13, 17), (17, 19), (19, 20), (0, 0)]
    assert char_spans_to_token_spans(offsets, [(0, 10), (11, 20)]) == [(1, 5), (5, 9)]
    assert char_spans_to_token_spans(offsets, [(11, 13)]) == [(5, 6)]
    assert char_spans_to_token_spans(offsets, []) == []
    # a token straddling two spans goes to the first; the ranges never overlap
    assert char_spans_to_token_spans([(0, 4), (4, 8)], [(0, 3), (3, 8)]) == [(0, 1), (1, 2)]
    # a span past the last token is empty, at the end
    assert char_spans_to_token_spans(offsets, [(25, 30)]) == [(9, 9)]
    # a whitespace-only token between two spans joins the later one
    spaced = [(0, 3), (3, 4), (4, 5), (5, 8), (8, 9)]  # "Tom" "." " " "Ate" "."
    assert char_spans_to_token_spans(spaced, [(0, 4), (5, 9)]) == [(0, 2), (2, 5)]


def test_char_spans_to_token_spans_with_fast_tokenizer(tiny_models):
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["causal"])
    assert tokenizer.is_fast
    text = (" The steaks cost 4.5 * $15.00 = $67.50. The chicken breasts cost 1.5 * $8.00 = $12.00. In total, she "
            "spent $67.50 + $12.00 = $79.50. The answer is 79.5")
    split = split_steps(text)
    encoding = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    ids, offsets = encoding["input_ids"], encoding["offset_mapping"]
    ranges = char_spans_to_token_spans(offsets, split.steps + [split.answer])
    assert ranges[0][0] == 0 and ranges[-1][1] == len(ids)
    for (_, end), (start, _) in zip(ranges, ranges[1:]):
        assert end == start
    for (cs, ce), (ts, te) in zip(split.steps + [split.answer], ranges):
        decoded = tokenizer.decode(ids[ts:te]).strip()
        assert decoded == text[cs:ce]
