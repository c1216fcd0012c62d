"""Follow-up questions as standalone queries: when a question needs its conversation, what the rules
carry over from the previous turn, and which model rewrites are taken."""

from rag.v1 import types_pb2
from services.generate.condense import checked_rewrite, condense_messages, entities, needs_context, rule_rewrite

GOVERNOR = [
    types_pb2.Turn(
        question="Who is the governor of Texas?",
        answer="Greg Abbott is the 48th governor of Texas [1]. He took office in 2015 [1].",
    )
]


def test_questions_that_refer_back_need_their_conversation():
    for question in ("and who came before him?", "When did he take office?", "What about Oklahoma?", "Why?"):
        assert needs_context(question), question
    for question in ("What is the capital of France?", "Who founded the Acme Corporation?"):
        assert not needs_context(question), question


def test_names_are_runs_of_capitalised_words_joined_by_small_connectors():
    assert entities("The Bank of England and Jane Austen met in New York City.") == [
        "Bank of England",
        "Jane Austen",
        "New York City",
    ]
    assert entities("In which UK city are the headquarters of the MI6?") == ["UK", "MI6"]


def test_the_rules_carry_the_previous_turns_names_and_topic():
    assert rule_rewrite(GOVERNOR, "and who came before him?") == "and who came before him? Texas Greg Abbott governor"
    # A question naming something of its own replaces the names, keeps the topic.
    assert rule_rewrite(GOVERNOR, "What about Oklahoma?") == "What about Oklahoma? governor"
    # A standalone question, or one without history, is searched as asked.
    assert rule_rewrite(GOVERNOR, "What is the capital of France?") == "What is the capital of France?"
    assert rule_rewrite([], "and who came before him?") == "and who came before him?"


def test_the_rules_read_the_query_a_previous_follow_up_was_searched_with():
    history = [
        *GOVERNOR,
        types_pb2.Turn(question="When did he take office?", query="When did he take office? Greg Abbott"),
    ]
    assert "Greg Abbott" in rule_rewrite(history, "Where was he born?")


def test_a_model_rewrite_is_taken_only_when_it_holds_up():
    assert checked_rewrite("Who was governor of Texas before Greg Abbott?", GOVERNOR, "and who came before him?") == (
        "Who was governor of Texas before Greg Abbott?"
    )
    assert checked_rewrite(
        'Standalone question: "When did Greg Abbott take office?"', GOVERNOR, "When did he take office?"
    ) == ("When did Greg Abbott take office?")
    # Nothing of the conversation came in; the question's own name was lost; not a question at all.
    assert checked_rewrite("Who came before him?", GOVERNOR, "and who came before him?") is None
    assert checked_rewrite("Who is the governor of Texas?", GOVERNOR, "What about Oklahoma?") is None
    assert checked_rewrite("", GOVERNOR, "When did he take office?") is None
    assert checked_rewrite("INSUFFICIENT_SOURCES", GOVERNOR, "When did he take office?") is None


def test_the_condense_prompt_shows_the_last_turns_without_citation_markers():
    messages = condense_messages(GOVERNOR, "and who came before him?")
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[-1]["content"] == (
        "Conversation:\nQ: Who is the governor of Texas?\nA: Greg Abbott is the 48th governor of Texas.\n\n"
        "Last question: and who came before him?"
    )
