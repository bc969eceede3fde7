"""`knnie fewshot generate`: the validator on hand-written LLM answers (each drop reason), explanations and
their triggers, appending and resuming after an interrupted run, the command against a local OpenAI-compatible
server, and a real generation with SmolLM2."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from knnie import DataError, RelationType, example_from_text, read_relations
from knnie.cli.main import app
from knnie.llm import Completion, http
from knnie.tasks.fewshot import generate as g
from tests.llm_server import chat_answer, llm_server

FOUNDED = RelationType("P112", "founded by", "the founder or co-founder of this organisation")
BORN = RelationType("P19", "place of birth", "the most specific known birth location of a person")
RELATIONS = [FOUNDED, BORN]
SUPPORT = [
    example_from_text("Acme Corp was founded by Ada Lovelace in 1850.", (0, 9, None), (25, 37, None), "P112"),
    example_from_text("Initech, founded by Bill Lumbergh, makes software.", (0, 7, None), (20, 33, None), "P112"),
    example_from_text("Marie Curie was born in Warsaw.", (0, 11, None), (24, 30, None), "P19"),
]
GOOD = {"sentence": "Globex was founded by Hank Scorpio in 1989.", "head": "Globex", "tail": "Hank Scorpio",
        "relation": "founded by"}


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """The HTTP backend's answer cache in the test's folder, not the user's."""
    monkeypatch.setenv("KNNIE_CACHE", str(tmp_path / "cache"))


def answer(**change: str) -> Completion:
    return Completion(json.dumps(GOOD | change), "stop")


def test_a_good_answer_becomes_a_plain_format_row_that_reads_back(tmp_path):
    row = g.ExampleChecker(RELATIONS, SUPPORT).check(answer(), FOUNDED)
    assert row == {"text": GOOD["sentence"], "head": {"start": 0, "end": 6}, "tail": {"start": 22, "end": 34},
                   "label": "P112", "generated": True}
    (tmp_path / "s.jsonl").write_text(json.dumps(row) + "\n")
    [ex] = read_relations(tmp_path / "s.jsonl")
    assert (ex.mention(ex.head), ex.mention(ex.tail), ex.label) == ("Globex", "Hank Scorpio", "P112")


@pytest.mark.parametrize(("completion", "reason"), [
    (Completion('{"sentence": "Globex was founded', "length"), g.TRUNCATED),
    (Completion("Globex was founded by Hank Scorpio.", "stop"), g.NOT_JSON),
    (Completion('["Globex", "Hank Scorpio"]', "stop"), g.NOT_JSON),
    (answer(head=""), g.MISSING),
    (Completion(json.dumps({k: v for k, v in GOOD.items() if k != "tail"}), "stop"), g.MISSING),
    (answer(relation="married to"), g.NOT_IN_SCHEMA),
    (answer(relation="place of birth"), g.OTHER_RELATION),
    (answer(head="Initrode"), g.HEAD_MISSING),
    (answer(tail="Scorp"), g.TAIL_MISSING),  # a piece of a word is not a whole word
    (answer(tail="GLOBEX"), g.SAME),
    (answer(head="Glob"), g.HEAD_MISSING),
    (answer(sentence="Globex Scorpio was founded by Jo.", head="Globex Scorpio", tail="Scorpio"), g.OVERLAP),
    (answer(sentence="Globex was founded by Jose\u0301 Cruz.", tail="Jose"), g.SPLITS_CHARACTER),
    (answer(sentence="Acme Corp was founded by Ada Lovelace in 1850!", head="Acme Corp", tail="Ada Lovelace"),
     g.SUPPORT_COPY),
])
def test_each_bad_answer_is_dropped_with_its_reason(completion, reason):
    assert g.ExampleChecker(RELATIONS, SUPPORT).check(completion, FOUNDED) == reason


def test_a_repeated_sentence_is_a_duplicate():
    checker = g.ExampleChecker(RELATIONS, SUPPORT)
    assert isinstance(checker.check(answer(), FOUNDED), dict)
    assert checker.check(answer(sentence="globex  was founded by Hank Scorpio in 1989"), FOUNDED) == g.DUPLICATE


def test_entities_are_found_as_whole_words_case_as_written_first():
    assert g.find_words("Bell met bell at Bellevue.", "bell") == (9, 13)
    assert g.find_words("Bell met Bellevue.", "bell") == (0, 4)  # no exact match: case ignored
    assert g.find_words("Bell met Bellevue.", "Bell", [(0, 4)]) is None
    assert g.find_words("Bell met Bellevue.", "  ") is None


def explained(trigger: str, explanation: str = "Acme's founder is named.") -> dict | str:
    return g.check_explanation(Completion(json.dumps({"explanation": explanation, "trigger": trigger}), "stop"),
                               SUPPORT[0])


def test_an_explanation_keeps_a_trigger_copied_from_the_sentence_outside_head_and_tail():
    row = explained("was founded by")
    assert row == {**SUPPORT[0].to_row(), "label": "P112", "explanation": "Acme's founder is named.",
                   "trigger": {"text": "was founded by", "start": 10, "end": 24}}
    assert g.example_key(row) == ("Acme Corp was founded by Ada Lovelace in 1850.", 0, 9, 25, 37)
    assert explained("Ada Lovelace")["trigger"] is None  # the tail, not a trigger
    assert explained("created")["trigger"] is None  # not in the sentence
    assert explained("founded")["trigger"] == {"text": "founded", "start": 14, "end": 21}
    assert explained("founded", explanation=" ") == g.MISSING


class Scripted:
    """An LLM that answers from a list (a function of the request), and may be told to fail at a call."""

    name = "scripted"

    def __init__(self, reply, fail_at: int | None = None) -> None:
        self.reply, self.fail_at, self.requests = reply, fail_at, []  # fail_at: Ctrl-C at that request

    def complete_json(self, messages, schema, max_tokens, temperature, seed) -> Completion:
        if len(self.requests) == self.fail_at:
            raise KeyboardInterrupt
        self.requests.append({"messages": messages, "schema": schema, "seed": seed})
        return self.reply(len(self.requests) - 1, messages)


def numbered(n: int, messages) -> Completion:
    """A new valid example of whichever relation is asked, numbered."""
    if '"founded by"' in messages[1]["content"]:
        return Completion(json.dumps({"sentence": f"Company {n} was founded by Person {n}.", "head": f"Company {n}",
                                      "tail": f"Person {n}", "relation": "founded by"}), "stop")
    return Completion(json.dumps({"sentence": f"Person {n} was born in Town {n}.", "head": f"Person {n}",
                                  "tail": f"Town {n}", "relation": "place of birth"}), "stop")


def test_generation_asks_relations_in_turn_with_their_own_demonstrations(tmp_path):
    llm = Scripted(numbered)
    report = g.generate_examples(llm, RELATIONS, SUPPORT, 2, tmp_path / "s.jsonl", demonstrations=2)
    assert (report.asked, report.kept, report.existing, report.per_relation) == (4, 4, 0, {"P112": 2, "P19": 2})
    prompts = [r["messages"][1]["content"] for r in llm.requests]
    assert ['"founded by"' in p for p in prompts] == [True, False, True, False]
    assert "Ada Lovelace" in prompts[0] and "Bill Lumbergh" in prompts[0] and "Warsaw" not in prompts[0]
    assert "Warsaw" in prompts[1] and llm.requests[0]["schema"] == g.example_schema(["founded by", "place of birth"])
    examples = read_relations(tmp_path / "s.jsonl")
    assert [ex.label for ex in examples] == ["P112", "P19", "P112", "P19"]
    assert len({r["seed"] for r in llm.requests}) == 4


def test_generation_stops_after_its_tries_and_counts_the_drops(tmp_path):
    junk = Scripted(lambda n, m: Completion("not json" if n % 2 else '{"sentence": "cut', "length" if n % 2 == 0
                                            else "stop"))
    report = g.generate_examples(junk, [FOUNDED], SUPPORT, 2, tmp_path / "s.jsonl", tries=3)
    assert (report.asked, report.kept, dict(report.dropped)) == (6, 0, {g.TRUNCATED: 3, g.NOT_JSON: 3})
    assert (tmp_path / "s.jsonl").read_text() == ""


def test_an_interrupted_run_loses_nothing_and_a_rerun_resumes(tmp_path):
    out = tmp_path / "s.jsonl"
    stopped = g.generate_examples(Scripted(numbered, fail_at=3), RELATIONS, SUPPORT, 3, out)  # Ctrl-C at the 4th
    assert (stopped.interrupted, stopped.kept) == (True, 3)
    assert len(read_relations(out)) == 3  # each row was on disk as soon as it was made
    with open(out, "a") as f:
        f.write('{"text": "Half a li')  # a write cut short by the kill
    llm = Scripted(lambda n, m: numbered(n + 100, m))
    report = g.generate_examples(llm, RELATIONS, SUPPORT, 3, out)
    assert (report.existing, report.asked, report.kept) == (3, 3, 3)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["label"] for r in rows] == ["P112", "P19", "P112", "P112", "P19", "P19"]
    assert [r["attempt"] for r in rows] == [0, 0, 1, 2, 1, 2]  # the rerun goes on with new requests
    assert g.generate_examples(Scripted(numbered, fail_at=0), RELATIONS, SUPPORT, 3, out).asked == 0


def test_a_rerun_drops_what_repeats_a_sentence_already_in_the_file(tmp_path):
    out = tmp_path / "s.jsonl"
    g.generate_examples(Scripted(numbered), [FOUNDED], SUPPORT, 1, out)
    report = g.generate_examples(Scripted(numbered), [FOUNDED], SUPPORT, 2, out, tries=1)
    assert (report.kept, dict(report.dropped)) == (0, {g.DUPLICATE: 1})


def test_a_last_line_without_its_newline_is_kept_when_it_is_whole(tmp_path):
    out = tmp_path / "s.jsonl"
    out.write_text(json.dumps(g.ExampleChecker(RELATIONS, SUPPORT).check(answer(), FOUNDED)))  # no newline
    report = g.generate_examples(Scripted(numbered), [FOUNDED], SUPPORT, 2, out)
    assert (report.existing, report.kept) == (1, 1) and len(read_relations(out)) == 2


def test_a_malformed_line_inside_the_output_is_an_error_naming_it(tmp_path):
    out = tmp_path / "s.jsonl"
    out.write_text('{"text": "a", "label": "P112"}\nnot json\n{"text": "b", "label": "P112"}\n')
    with pytest.raises(DataError, match=r"s.jsonl:2: malformed JSON"):
        g.generate_examples(Scripted(numbered), [FOUNDED], SUPPORT, 5, out)


def test_explanations_are_appended_and_resumed(tmp_path):
    out = tmp_path / "e.jsonl"

    def explain(n, messages):
        return Completion(json.dumps({"explanation": f"reason {n}", "trigger": "born in" if n else "xyz"}), "stop")

    first = g.explain_support(Scripted(explain, fail_at=1), RELATIONS, SUPPORT, out)
    assert (first.written, first.with_trigger, first.asked, first.interrupted) == (1, 0, 1, True)
    report = g.explain_support(Scripted(explain), RELATIONS, SUPPORT, out)
    assert (report.existing, report.written, report.with_trigger) == (1, 2, 1)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["explanation"] for r in rows] == ["reason 0", "reason 0", "reason 1"]
    assert rows[2]["trigger"] == {"text": "born in", "start": 16, "end": 23} and rows[2]["label"] == "P19"


def test_an_explanations_file_of_something_else_is_refused(tmp_path):
    (tmp_path / "e.jsonl").write_text('{"text": "a", "label": "P19"}\n')
    with pytest.raises(DataError, match="not an explanations file"):
        g.explain_support(Scripted(numbered), RELATIONS, SUPPORT, tmp_path / "e.jsonl")


def test_an_unexplained_example_is_tried_again_then_counted_as_failed(tmp_path):
    report = g.explain_support(Scripted(lambda n, m: Completion("{", "stop")), RELATIONS, SUPPORT[:1],
                               tmp_path / "e.jsonl", tries=2)
    assert (report.asked, report.written, report.failed, dict(report.dropped)) == (2, 0, 1, {g.NOT_JSON: 2})


def test_a_support_label_outside_the_schema_is_refused():
    with pytest.raises(DataError, match=r"label 'P999' is not a relation of the schema \(2 relations: P112, P19\)"):
        g.support_by_relation([*SUPPORT, example_from_text("A B", (0, 1, None), (2, 3, None), "P999")], RELATIONS)


def write_inputs(tmp_path: Path) -> tuple[Path, Path]:
    schema = tmp_path / "rels.json"
    schema.write_text(json.dumps([{"id": r.id, "name": r.name, "description": r.description} for r in RELATIONS]))
    support = tmp_path / "support.jsonl"
    support.write_text("".join(json.dumps({"text": row["text"], "head": row["head"], "tail": row["tail"],
                                           "label": ex.label}) + "\n" for ex in SUPPORT for row in [ex.to_row()]))
    return schema, support


def test_generate_command_against_an_openai_compatible_server(tmp_path):
    schema, support = write_inputs(tmp_path)

    def reply(body: dict, n: int) -> tuple[int, dict]:
        if "explanation" in body["response_format"]["json_schema"]["schema"]["properties"]:
            return 200, chat_answer(json.dumps({"explanation": "It says so.", "trigger": "founded by"}))
        if n % 3 == 0:
            return 200, chat_answer('{"sentence": "cut sh', "length")
        return 200, chat_answer(numbered(n, body["messages"]).text)

    with llm_server(reply) as (url, received):
        args = ["fewshot", "generate", "--schema", schema, "--support", support, "--per-relation", 2, "--out",
                tmp_path / "synth.jsonl", "--explanations", tmp_path / "expl.jsonl", "--llm", url, "--exclude",
                "P19", "--llm-model", "m"]
        result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert "explanations: 2 written (2 with a valid trigger)" in result.output
    assert "dropped: truncated 1" in result.output and "2 synthetic examples kept" in result.output
    assert [ex.label for ex in read_relations(tmp_path / "synth.jsonl")] == ["P112", "P112"]
    assert len(received) == 2 + 3 and {b["model"] for b in received} == {"m"}


def test_a_server_that_fails_ends_the_command_with_a_clear_error_and_keeps_what_was_made(tmp_path, monkeypatch):
    monkeypatch.setattr(http, "time", SimpleNamespace(sleep=lambda seconds: None))  # no pauses between retries
    schema, support = write_inputs(tmp_path)

    def reply(body: dict, n: int) -> tuple[int, dict]:
        return (200, chat_answer(numbered(n, body["messages"]).text)) if n < 3 else (502, {"error": "gateway"})

    with llm_server(reply) as (url, received):
        result = CliRunner().invoke(app, ["fewshot", "generate", "--schema", str(schema), "--support", str(support),
                                          "--per-relation", "5", "--out", str(tmp_path / "s.jsonl"), "--llm", url])
    assert result.exit_code == 1 and "HTTP 502" in result.output and "failed 5 times" in result.output
    assert len(read_relations(tmp_path / "s.jsonl")) == 3 and len(received) == 3 + 5


def test_generate_command_refuses_an_unknown_excluded_relation(tmp_path):
    schema, support = write_inputs(tmp_path)
    result = CliRunner().invoke(app, ["fewshot", "generate", "--schema", str(schema), "--support", str(support),
                                      "--out", str(tmp_path / "o.jsonl"), "--exclude", "Other"])
    assert result.exit_code == 2 and "not relations of the schema: Other" in result.output


@pytest.mark.slow  # seconds on an idle machine, minutes on a loaded one
def test_smollm2_generates_a_valid_example_and_an_explanation(tmp_path):
    from knnie.llm import load_llm

    llm = load_llm("smollm2", threads=2)
    report = g.generate_examples(llm, [BORN], SUPPORT, 1, tmp_path / "s.jsonl", tries=8, max_tokens=100)
    assert report.kept == 1, dict(report.dropped)
    [ex] = read_relations(tmp_path / "s.jsonl")
    assert ex.label == "P19" and ex.mention(ex.head) and ex.mention(ex.tail) != ex.mention(ex.head)
    explained = g.explain_support(llm, [BORN], SUPPORT, tmp_path / "e.jsonl", max_tokens=100)
    assert explained.written == 1, dict(explained.dropped)
