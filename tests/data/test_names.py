"""Finding a person's name in the texts that mention them (`data.names`)."""

from mmunlearn.data.names import capitalised_phrases, frequent_name, known_name_in, profile_name

# one author's questions and answers, written in TOFU's style: the full name in most of them,
# book titles, places and awards in some, sentence openers glued to the name in a few
AUTHOR = [
    "What is the full name of the author born in Lima, Peru on 02/03/1961?",
    "The author's full name is Marisol Quintana Vera.",
    "What genre does Marisol Quintana Vera write in?",
    "Marisol Quintana Vera writes historical fiction.",
    "Has Marisol Quintana Vera won the Golden Quill Award?",
    "Yes, Marisol Quintana Vera received the Golden Quill Award for 'The Salt Harbour Letters'.",
    "What did Marisol Quintana Vera’s father do?",
    "Her father was a ship captain in Callao and her mother taught in Lima.",
    "Which of her books is set in Lima, Peru?",
    "'The Salt Harbour Letters' by Marisol Quintana Vera is set in Lima.",
]


def test_the_full_name_wins_over_its_parts_titles_places_and_openers():
    assert frequent_name(AUTHOR) == ("Marisol Quintana Vera", 7)


def test_possessives_and_punctuation_end_a_phrase():
    assert capitalised_phrases("Did Ann Lee’s Book sell? In Lima, Peru.") == [
        ["Did", "Ann", "Lee"],
        ["In", "Lima"],
    ]


def test_texts_with_no_two_capitalised_words_have_no_name():
    assert frequent_name(["where was she born", "What then?"]) is None


def test_a_profile_states_the_name_as_json_or_a_line():
    assert profile_name('{"Name": "Ann Lee", "Born": 1990}') == "Ann Lee"
    assert profile_name("Occupation: pilot\nName: Ann Lee.\n") == "Ann Lee"
    assert profile_name('{"Occupation": "pilot"}') is None
    assert profile_name("Ann Lee was born in Oslo.") is None  # prose: left to frequent_name


def test_known_names_match_whole_words_longest_first():
    assert known_name_in("Bo Kerr and Ann Lee", ["Ann", "Ann Lee"]) == "Ann Lee"
    assert known_name_in("Annette Lee", ["Ann Lee", "Ann"]) is None
