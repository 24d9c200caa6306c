"""Answer extraction on real teacher rationales and reference solutions from ../shared/data."""

from __future__ import annotations

import json

import pytest

from kpod.data.answers import answers_match, extract_answer, normalize_number

# (text, expected strict, expected flexible); texts are verbatim from the files named above each group.
NUMERIC_CASES = [
    # gsm8k/train.jsonl reference solutions: "#### N", commas, calculator notes, negatives, money
    ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether "
     "in April and May.\n#### 72", "72", "72"),
    ("It cost 20000*2=$<<20000*2=40000>>40,000 a year\nSo it cost 40,000*13=$<<40000*13=520000>>520,000\n"
     "#### 520,000", "520000", "520000"),
    ("The number of seats sold was 0.75*60,000=<<0.75*60000=45000>>45,000.\nAnd 45,000-5,000=<<45000-5000=40000"
     ">>40,000.\n#### 40,000", "40000", "40000"),
    ("The second laptop costs $500*3=$<<500*3=1500>>1500.\nAdam needs to spend $1500+$500=$<<1500+500=2000>>2000 "
     "for both.\n#### 2,000", "2000", "2000"),
    ("-14 + (-8) + 1 = <<-14+-8+1=-21>>-21 degrees Fahrenheit\n-21/3 = <<-21/3=-7>>-7 degrees Fahrenheit\n"
     "The average temperature was -7 degrees Fahrenheit.\n#### -7", "-7", "-7"),
    ("Let N = smallest number\nN + 2 = next number\nN + 4 = largest number\nN + (N + 2) + (N + 4) = -147\n"
     "3N + 6 = -147\n3N = <<-153=-153>>-153\nN = -51\nThe largest number is <<-47=-47>>-47.\n#### -47", "-47", "-47"),
    ("8 pints of paint cost $8.00 each so they would cost her 8*8 = $<<8*8=64.00>>64.00\n8 pints of paint cost "
     "$64.00 or she could buy a gallon of paint for $55.00. If she buys a gallon, she will save 64-55 = $9.00\n"
     "#### 9", "9", "9"),
    ("So, your total savings will be $0.05 x 20 = $<<0.05*20=1>>1.\n#### 1", "1", "1"),
    ("Lance, Margaret, Guy and Bill have $0.70 + $0.75 + $0.60 + $0.60 = $<<0.70+0.75+0.60+0.60=2.65>>2.65.\n"
     "Thus they have $2.65 * 100 = <<2.65*100=265>>265 cents.\n#### 265", "265", "265"),
    # rationales/gsm8k_llama3-70b.json: "The answer is N"
    ("First, find the price after the first month: 1000 - 10% of 1000 = 1000 - 100 = 900. Then, find the price "
     "after the second month: 900 - 20% of 900 = 900 - 180 = 720. The answer is 720", "720", "720"),
    ("400 * 300 = 120,000 carrots total. 120,000 / 20 hours = 6,000 carrots per hour. The answer is 6,000",
     "6000", "6000"),
    ("Total square feet = 2,400 + 1,000 = 3,400 sq ft. Total price = 3,400 * 98 = 333,200. The answer is 333,200",
     "333200", "333200"),
    ("The shop loses 3 * 5000 = 15,000 a year. Multiply by the number of years, so 15,000 * 6 = 90,000. "
     "The answer is 90,000", "90000", "90000"),
    ("Add up the temperatures: -36 + 13 + (-15) + (-10) = -48. Divide by 4: -48 / 4 = -12. The answer is -12",
     "-12", "-12"),
    ("Divide by 3: x = -51. The largest number is x + 4 = -51 + 4 = -47. The answer is -47", "-47", "-47"),
    ("50% more than 160 is 160 * 1.5 = 240.  The answer is 240", "240", "240"),
    ("Total cost is 4.50 + 4.50 + 3.00 + 4.00 + 2.50 + 2.50 = 21. The answer is 21", "21", "21"),
    ("Mr. Llesis kept 50 * 7/10 = 35 kilograms. Mr. Everest has 50 - 35 = 15 kilograms. The difference is "
     "35 - 15 = 20 kilograms. The answer is 20", "20", "20"),
    ("Since Rob leaves at 11 a.m., Mark should leave at 11 - 3 = 8 a.m. The answer is 9", "9", "9"),
    # an intermediate "the answer is" before the final one: the last statement counts
    ("The remaining chocolate bars are 18 - 12 = 6. But the question asks how many more he needs to sell, so the "
     "answer is 18 - 6 = 12 - 6 = 6. The answer is 6", "6", "6"),
    ("Slices left are 30 - 25 = 5. But wait, the question asks how many slices are left. So, the answer is "
     "30 - 25 - 1 (Manny had a piece too) = 4. The answer is 4", "4", "4"),
    # "$" after the trigger is not strict, as in the harness
    ("For the $300 coat, she only needs to buy it twice, so the total cost is 2 * $300 = $600. The answer is "
     "$720 - $600 = $120. The answer is 120", "120", "120"),
    ("Good firecrackers are 36 - 6 = 30. Jerry sets off half of these, so the answer is 30/2 = 15", "15", "15"),
    ("Nedy ate 8 packs of crackers from Monday to Thursday. If Nedy ate twice the amount on Friday, then Nedy ate "
     "2 * 8 = 16 packs of crackers on Friday. Total packs of crackers eaten are 8 + 16 = 24. Since each pack is 1, "
     "total crackers eaten are 24. The answer is 48", "48", "48"),
    # rationales/gsm8k_gemini-1.5-flash.json: decimals, run-on sentences, line breaks, a stray "$"
    (" The steaks cost 4.5 * $15.00 = $67.50. The chicken breasts cost 1.5 * $8.00 = $12.00. In total, she spent "
     "$67.50 + $12.00 = $79.50. The answer is 79.5", "79.5", "79.5"),
    ("Mairead walked 3/5 * 40 = 24 miles. Mairead jogged 24 / 5 = 4.8 miles. The total distance Mairead covered "
     "is 40 + 24 + 4.8 = 68.8 miles.The answer is 68.8", "68.8", "68.8"),
    (" There are 60 minutes in an hour, so they spent 270 / 60 = 4.5 hours moving. The answer is 4.5", "4.5", "4.5"),
    ("20 - 2 = 18\n 18 + 1 = 19\n The answer is 19", "19", "19"),
    ("24 = (1/2) * base * 8\n 24 = 4 * base\n base = 24 / 4\n The answer is 6", "6", "6"),
    ("A fourth of the students were dancers: 140 / 4 = 35 dancers.35 - 25 = 10 dancers did not slow dance."
     "The answer is 10", "10", "10"),
    (" He bought 30 wigs * $5/wig = $150. The answer is $150 - $4 = 110.  The answer is 110", "110", "110"),
    # rationales/svamp_gpt-3.5-turbo.json and asdiv_gpt-3.5-turbo.json: no answer trigger (strict: None)
    ("Danny found a total of 15 + 18 = 33 bottle caps and wrappers at the park.\nAdding that amount to his "
     "collection, Danny now has 67 + 33 = 100 wrappers.\nHe also now has 35 + 33 = 68 bottle caps.\nThus, there "
     "are 100 - 68 = 32 more wrappers than bottle caps.", None, "32"),
    ("Each candy bar cost $ 0.30 ($ 3 divided by 10). Dan spent $ 3, so he has $ 1 left.", None, "1"),
    ("Since Dan bought two equal-priced candy bars, we can divide the amount spent on candy bars by 2 to find the "
     "price of one candy bar:\n\n$1 ÷ 2 = $0.50\n\nTherefore, each candy bar cost $0.50.", None, "0.5"),
    ("Rachel's family spent a total of $308.00 on circus tickets because 44 x 7 = $308.00.", None, "308"),
    ("23 pounds per bag x 45 bags = 1035 pounds\n\nTherefore, there are 1,035 pounds of oranges in 45 bags.",
     None, "45"),
    ("$1367 x 5 = $6835. \n\nTherefore, Lewis earns a total of $6,835.00 during the harvest season.", None, "6835"),
    ("(4.80/4) = $1.20\n\nTherefore, each DVD cost $1.20 to rent.", None, "1.2"),
    ("If Peter did 24 sit-ups, then Greg did 4/3 times as many since he does 4 sit-ups for every 3 that Peter "
     "does. \n\n4/3 times 24 is 32. \n\nTherefore, Greg did 32 sit-ups.", None, "32"),
    # kpod's own answer sentence (kpod.data.prompts.answer_sentence) after a real rationale
    ("Each box holds 6 pens. So 7 * 6 = 42 pens. Therefore, the answer is 42.", "42", "42"),
    ("Then 150.50 - 20 = 130.50. Therefore, the answer is 130.5.", "130.5", "130.5"),
    ("Mairead walked 3/5 of the distance. Therefore, the answer is 3/5.", "0.6", "0.6"),
]

# rationales/csqa_llama3-70b.json: (text, expected strict, expected flexible)
CHOICE_CASES = [
    ("Sammy wants to go where people are, so he'll go to a place with many people. This is the definition of "
     "populated areas. The answer is B", "B", "B"),
    ("The police force law. The answer is A", "A", "A"),
    ("The answer is directly stated as California. The answer is C", "C", "C"),
    ("The question asks when the killing ends in a war. The answer is when every person dies. The answer is E",
     "E", "E"),
    ("When you plant a garden, you can harvest something edible. From the options, only vegetable (D) is "
     "something you can eat. The answer is D", "D", "D"),
    ("The phrase 'starring a shark' implies a TV show about sharks. Discovery is a TV channel known for its "
     "documentary shows. Therefore, the answer is D. The answer is D", "D", "D"),
    ("The question asks what kissing leads to. From the answer choices, happiness (C) is the most plausible and "
     "positive outcome.", None, "C"),
    ("A choker is a type of jewelry, so it's likely to be found in a jewelry store.", None, None),
]


@pytest.mark.parametrize("text,strict,flexible", NUMERIC_CASES)
def test_numeric_extraction(text, strict, flexible):
    assert extract_answer(text, mode="strict") == strict
    assert extract_answer(text, mode="flexible") == flexible


@pytest.mark.parametrize("text,strict,flexible", CHOICE_CASES)
def test_choice_extraction(text, strict, flexible):
    assert extract_answer(text, choices=True, mode="strict") == strict
    assert extract_answer(text, choices=True, mode="flexible") == flexible


def test_default_mode_is_flexible_and_bad_mode_rejected():
    text = "Thus, there are 100 - 68 = 32 more wrappers than bottle caps."
    assert extract_answer(text) == "32"
    assert extract_answer("") is None and extract_answer(None) is None
    with pytest.raises(ValueError):
        extract_answer(text, mode="lenient")


def test_flexible_skips_digitless_matches():
    # the harness regex matches "..." too; a trailing ellipsis must not hide the last number
    assert extract_answer("So far 12 apples...") == "12"


@pytest.mark.parametrize("raw,expected", [
    ("1,000.25", "1000.25"), ("$1.50", "1.5"), ("18.00", "18"), ("51.0", "51"), ("0.50", "0.5"), ("-3", "-3"),
    ("\u22124", "-4"), ("9 (apples)", "9"), ("50%", "50"), ("72.", "72"), ("3/4", "0.75"), ("1/3", "0.333333"),
    (".5", "0.5"), ("$ 0.30", "0.3"), ("no number", None), ("", None), (None, None), ("5/0", None),
])
def test_normalize_number(raw, expected):
    assert normalize_number(raw) == expected


@pytest.mark.parametrize("pred,gold,tol,expected", [
    ("18", "18", 1e-4, True), ("18.0", "18", 1e-4, True), ("1,000", "1000", 1e-4, True),
    ("0.333333", "0.3333333333", 1e-4, True), ("0.33", "0.3333", 1e-4, False), ("0.33", "0.3333", 1e-2, True),
    ("17", "18", 1e-4, False), ("-7", "7", 1e-4, False), ("0.00001", "0", 1e-4, True),
    ("b", "B", 1e-4, True), ("A", "B", 1e-4, False), (None, "3", 1e-4, False), ("3", None, 1e-4, False),
])
def test_answers_match(pred, gold, tol, expected):
    assert answers_match(pred, gold, tol=tol) is expected


def test_teacher_answers_agree_with_stated_answers(shared_data):
    """On every LLaMA-3 GSM8K rationale, the strict answer is the number after the last
    "The answer is" whenever that is a plain number (the format the teacher was asked for), even
    when an earlier sentence says "so the answer is 18 - 6 = 12"."""
    records = json.loads((shared_data / "rationales" / "gsm8k_llama3-70b.json").read_text())
    checked = 0
    for record in records:
        tail = record["output"].rsplit("The answer is ", 1)[-1].strip()
        if tail.replace(",", "").lstrip("-").isdigit():
            assert extract_answer(record["output"], mode="strict") == tail.replace(",", "")
            checked += 1
    assert checked > 7000
