"""MELU module assignment on hand-made pages (runs without the real data)."""

from mmunlearn.data.melu import module_of

PAGES = {
    "Ada Lind": "Ada Lind worked with Bo Carr in Oslo. Later, Moreau joined them.",
    "Cy Dunn": "Cy Dunn met Bo Carr twice; Vance was his rival.",
}


def test_full_name_in_exactly_one_page():
    assert module_of("Vance", PAGES) == "Cy Dunn"


def test_surname_when_no_page_names_the_person_in_full():
    assert module_of("Luc Moreau", PAGES) == "Ada Lind"


def test_several_pages_or_none_leave_the_row_unassigned():
    assert module_of("Bo Carr", PAGES) is None  # both pages name Bo Carr in full
    assert module_of("Eve Stone", PAGES) is None
