"""The admin site's form mechanism without I/O (issue 12, item 4): which field a refusal is
about, its words, what a refused form keeps, and that every form of the site uses it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from admin_site import web
from pointsbot.platform.errors import InvalidInput, LimitExceeded

pytestmark = pytest.mark.unit


def _refused(name: str, values: dict[str, list[str]], errors: dict[str, str]) -> web.RefusedForm:
    return web.RefusedForm(name, values, errors)


def test_an_internal_field_name_in_a_refusal_becomes_its_label():
    exc = InvalidInput("max_change must be above zero", field="max_change")
    assert web.refusal_message(exc, "max_change") == "Largest single change must be above zero."
    # A plain word is a word already: left as it is
    assert web.refusal_message(InvalidInput("The reason contains X."), "reason") == "The reason contains X."


def test_the_field_comes_from_the_error_then_its_class_then_its_words():
    req = web.AdminRequest(event=None, settings=None, db=None, session=None)  # type: ignore[arg-type]
    req._form = {"_form": ["f"], "amount": ["7"], "password": ["secret"], "csrf_token": ["t"]}
    req.back_to("/g/1/points", {LimitExceeded: "amount", "reason": "reason"})
    assert req.refusal(InvalidInput("x", field="member")).errors == {"member": "x"}
    assert req.refusal(LimitExceeded("Too much.")).errors == {"amount": "Too much."}
    assert req.refusal(InvalidInput("The Reason is long.")).errors == {"reason": "The Reason is long."}
    assert req.refusal(InvalidInput("Something else.")).errors == {web.WHOLE_FORM: "Something else."}
    # And what is kept: the typed values, never the password nor the tokens
    kept = req.refusal(InvalidInput("x")).values
    assert kept == {"amount": ["7"]}


def test_a_refusal_inside_about_is_about_that_field_unless_it_names_one():
    req = web.AdminRequest(event=None, settings=None, db=None, session=None)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput) as caught, req.about("content"):
        raise InvalidInput("The message is empty.")
    assert caught.value.field == "content"
    with pytest.raises(InvalidInput) as caught, req.about("content"):
        raise InvalidInput("No.", field="to")
    assert caught.value.field == "to"


def test_a_form_view_fills_only_the_refused_form_and_escapes_what_was_typed():
    refused = _refused("one", {"reason": ['"><script>x</script>'], "silent": ["on"], "op": ["set"]},
                       {"reason": "Say <why>."})  # fmt: skip
    one, other = web.FormView("one", refused, "tok"), web.FormView("two", refused, "tok")
    assert one.value("reason", "default") == '"><script>x</script>'
    html = f'<input value="{web.Markup.escape(one.value("reason"))}"{one.invalid("reason")}>{one.error("reason")}'
    assert "<script>" not in html and "&lt;why&gt;" in html and 'aria-invalid="true"' in html
    assert one.checked("silent") and one.checked("op", "set") and not one.checked("op", "award", True)
    assert other.value("reason", "default") == "default" and other.checked("op", "award", True)
    assert not other.error("reason") and not other.invalid("reason")
    # Only the first refused field takes the focus
    two = _refused("one", {}, {"a": "A.", "b": "B."})
    view = web.FormView("one", two, "tok")
    assert "autofocus" in view.invalid("a") and "autofocus" not in view.invalid("b")


TEMPLATES = Path(web.TEMPLATES)


@pytest.mark.parametrize("template", sorted(p.name for p in TEMPLATES.glob("*.html")))
def test_every_post_form_of_the_site_names_itself_through_the_mechanism(template):
    text = (TEMPLATES / template).read_text()
    for form in re.findall(r'<form method="post".*?</form>', text, flags=re.S):
        assert re.search(r"form_for\([^)]*\)\.head\(\)|\b\w+\.head\(\)", form), (template, form[:200])
        assert 'name="csrf_token"' not in form, template  # the head writes it
