"""Lexical analysis per language, and language detection (the real py3langid model)."""

from services.common.language import detect, language_of
from services.retrieve.analysis import (
    analyse_query,
    document_terms,
    identifiers,
    normalise,
    plain,
    stemmed,
    words,
)


def test_arabic_diacritics_tatweel_and_letter_variants_are_folded():
    assert normalise("مُحَمَّدٌ") == "محمد"
    assert normalise("كتـــاب") == "كتاب"
    assert normalise("أحمد إسلام آمن مستشفى مدرسة") == "احمد اسلام امن مستشفي مدرسه"
    # A question without diacritics meets a passage written with them.
    assert stemmed("المَدْرَسَةُ", "ar") == stemmed("المدرسة", "ar") == ["مدرسه"]


def test_arabic_stop_words_are_dropped():
    assert stemmed("ما هي عاصمة مصر", "ar") == ["عاصم", "مصر"]


def test_each_language_is_stemmed_by_its_own_stemmer():
    assert stemmed("Die Häuser der Stadt", "de") == ["haus", "stadt"]
    # English analysis neither knows German stop words nor stems German plurals.
    assert stemmed("Die Häuser der Stadt", "en") == ["die", "häuser", "der", "stadt"]
    assert stemmed("The cats are running quickly", "en") == ["cat", "run", "quick"]


def test_an_unknown_language_is_only_folded():
    assert stemmed("Ünïcode Running", "") == ["ünïcode", "running"]


def test_cjk_is_split_into_bigrams():
    assert stemmed("東京大学", "ja") == ["東京", "京大", "大学"]
    assert words("使用Kubernetes部署") == ["使用", "Kubernetes", "部署"]  # case folding comes before
    assert words("猫") == ["猫"]


def test_combining_marks_do_not_cut_words():
    assert words("हिंदी भाषा") == ["हिंदी", "भाषा"]


def test_plain_terms_fold_accents_and_keep_compound_identifiers_whole():
    assert plain("CAFÉ naïve ERR-4821 v1.2.3 user_id api/v1/users") == [
        *("cafe", "naive", "err", "4821", "v1", "2", "3", "user_id", "api", "v1", "users"),
        *("err-4821", "v1.2.3", "api/v1/users"),
    ]


def test_identifiers_are_codes_compounds_and_long_numbers():
    assert identifiers("what does ERR-4821 mean for x7b2 in 1994, order 48213") == ["x7b2", "48213", "err-4821"]
    assert identifiers("how do cats purr") == []


def test_document_terms_name_every_lexical_field():
    assert document_terms("Cats", "Care > Food", "Cats purr. ERR-4821", "en") == {
        "title_terms": "cat",
        "section_terms": "care food",
        "text_terms": "cat purr err 4821",
        "plain": "cats care food cats purr err 4821 err-4821",
    }


def test_language_detection():
    assert language_of("Wer war der erste Bundeskanzler der Bundesrepublik?") == "de"
    assert language_of("ما هي عاصمة فرنسا") == "ar"
    assert language_of("Cats are small domesticated felines that purr.") == "en"
    assert language_of("东京的人口是多少") == "zh"
    # Too little to tell: unknown, analysed by the plain form (and as its script suggests).
    assert detect("ERR-4821")[0] == "" and detect("")[0] == "" and detect("---")[0] == ""


def test_a_query_in_an_unsure_language_is_analysed_as_its_script_suggests():
    query = analyse_query("ERR-4821")
    assert (query.language, query.languages, query.stemmed) == ("", ("en",), ("err", "4821"))
    assert query.plain == ("err", "4821", "err-4821") and query.identifiers == ("err-4821",)
    arabic = analyse_query("ما هي عاصمة مصر")
    assert (arabic.language, arabic.languages, arabic.stemmed) == ("ar", ("ar",), ("عاصم", "مصر"))
