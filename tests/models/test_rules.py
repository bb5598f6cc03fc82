"""The path rules of docs/procedure.md, over every combination of the facts that drive them."""

from __future__ import annotations

import itertools

import pytest

from models.enums import AbuseOrNeglect, CasePath, Category, NotificationDuty
from models.rules import (
    CARE_LEAVER_MAX_AGE,
    LOOKED_AFTER_MAX_AGE,
    CaseFacts,
    case_path,
    dsp_decision_refusals,
    notification_duty,
    rapid_review_follows_sin,
    rapid_review_starts_at_decision,
)

KNOWN = AbuseOrNeglect.KNOWN
SUSPECTED = AbuseOrNeglect.SUSPECTED
NOT_SUSPECTED = AbuseOrNeglect.NOT_SUSPECTED
DEATH = Category.DEATH
HARM = Category.SERIOUS_HARM
NEAR_MISS = Category.NEAR_MISS

# Every combination the forms allow: a single child cannot be both looked-after and a care leaver,
# but a referral of siblings can have one of each, so both flags together are a real case too.
ALL_FACTS = [
    CaseFacts(category=category, abuse_or_neglect=abuse, looked_after_child=looked_after,
              care_leaver=care_leaver)
    for category, abuse, looked_after, care_leaver in itertools.product(
        Category, AbuseOrNeglect, (False, True), (False, True)
    )
]
DECISIONS = list(itertools.product((False, True), repeat=2))


def facts(category: Category, abuse: AbuseOrNeglect, *, looked_after: bool = False,
          care_leaver: bool = False) -> CaseFacts:
    return CaseFacts(category=category, abuse_or_neglect=abuse, looked_after_child=looked_after,
                     care_leaver=care_leaver)


def fact_id(value: object) -> str:
    if isinstance(value, CaseFacts):
        flags = [flag for flag, on in (("lac", value.looked_after_child),
                                       ("care-leaver", value.care_leaver)) if on]
        return "-".join([value.category.value, value.abuse_or_neglect.value, *flags])
    return str(value)


def test_the_age_limits() -> None:
    assert CARE_LEAVER_MAX_AGE == 24  # "up to and including age 24"
    assert LOOKED_AFTER_MAX_AGE == 17  # a looked-after child is under 18


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (facts(HARM, KNOWN), True),
        (facts(HARM, SUSPECTED), True),
        (facts(HARM, NOT_SUSPECTED), False),
    ],
    ids=fact_id,
)
def test_known_or_suspected(case: CaseFacts, expected: bool) -> None:
    assert case.abuse_or_neglect_known_or_suspected is expected


# -- notification duty -------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("case", "duty"),
    [
        # A looked-after child's death is always notified, whatever the cause.
        (facts(DEATH, NOT_SUSPECTED, looked_after=True), NotificationDuty.MANDATORY),
        (facts(DEATH, SUSPECTED, looked_after=True), NotificationDuty.MANDATORY),
        (facts(DEATH, KNOWN, looked_after=True), NotificationDuty.MANDATORY),
        (facts(DEATH, NOT_SUSPECTED, looked_after=True, care_leaver=True), NotificationDuty.MANDATORY),
        # ...but serious harm to a looked-after child follows the ordinary criteria.
        (facts(HARM, NOT_SUSPECTED, looked_after=True), NotificationDuty.CRITERIA_NOT_MET),
        (facts(HARM, SUSPECTED, looked_after=True), NotificationDuty.CRITERIA_MET),
        # Near misses are never notified, whoever the child.
        (facts(NEAR_MISS, KNOWN), NotificationDuty.NOT_NOTIFIABLE),
        (facts(NEAR_MISS, SUSPECTED), NotificationDuty.NOT_NOTIFIABLE),
        (facts(NEAR_MISS, NOT_SUSPECTED), NotificationDuty.NOT_NOTIFIABLE),
        (facts(NEAR_MISS, KNOWN, looked_after=True), NotificationDuty.NOT_NOTIFIABLE),
        (facts(NEAR_MISS, NOT_SUSPECTED, care_leaver=True), NotificationDuty.NOT_NOTIFIABLE),
        # Death or serious harm with abuse or neglect known or suspected: s16C.
        (facts(DEATH, KNOWN), NotificationDuty.CRITERIA_MET),
        (facts(DEATH, SUSPECTED), NotificationDuty.CRITERIA_MET),
        (facts(HARM, KNOWN), NotificationDuty.CRITERIA_MET),
        (facts(HARM, SUSPECTED), NotificationDuty.CRITERIA_MET),
        (facts(DEATH, NOT_SUSPECTED), NotificationDuty.CRITERIA_NOT_MET),
        (facts(HARM, NOT_SUSPECTED), NotificationDuty.CRITERIA_NOT_MET),
        # A care leaver's death should be notified.
        (facts(DEATH, NOT_SUSPECTED, care_leaver=True), NotificationDuty.SHOULD_NOTIFY),
        (facts(HARM, NOT_SUSPECTED, care_leaver=True), NotificationDuty.CRITERIA_NOT_MET),
    ],
    ids=fact_id,
)
def test_notification_duty(case: CaseFacts, duty: NotificationDuty) -> None:
    result = notification_duty(case)
    assert result.duty is duty
    assert result.reason


@pytest.mark.parametrize("case", ALL_FACTS, ids=fact_id)
def test_every_combination_has_a_duty_with_a_reason(case: CaseFacts) -> None:
    result = notification_duty(case)
    assert result.duty in set(NotificationDuty)
    assert result.reason


@pytest.mark.parametrize(
    ("case", "source"),
    [
        (facts(DEATH, NOT_SUSPECTED, looked_after=True), "Other circumstances"),
        (facts(NEAR_MISS, KNOWN), "step 5"),
        (facts(HARM, KNOWN), "s16C"),
        (facts(DEATH, NOT_SUSPECTED, care_leaver=True), "Other circumstances"),
    ],
    ids=fact_id,
)
def test_each_duty_names_its_source(case: CaseFacts, source: str) -> None:
    assert source in notification_duty(case).reason


# -- does a Rapid Review follow a SIN? ----------------------------------------------------------

@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (facts(DEATH, KNOWN), True),
        (facts(DEATH, SUSPECTED), True),
        (facts(HARM, KNOWN), True),
        (facts(HARM, SUSPECTED), True),
        (facts(HARM, SUSPECTED, looked_after=True), True),
        (facts(DEATH, SUSPECTED, looked_after=True), True),
        (facts(DEATH, NOT_SUSPECTED, looked_after=True), False),  # notified, but no review required
        (facts(DEATH, NOT_SUSPECTED, care_leaver=True), False),
        (facts(DEATH, NOT_SUSPECTED), False),
        (facts(HARM, NOT_SUSPECTED), False),
        (facts(NEAR_MISS, KNOWN), False),
        (facts(NEAR_MISS, SUSPECTED), False),
        (facts(NEAR_MISS, NOT_SUSPECTED), False),
    ],
    ids=fact_id,
)
def test_rapid_review_follows_sin(case: CaseFacts, expected: bool) -> None:
    assert rapid_review_follows_sin(case) is expected


# -- DSP decisions the procedure refuses --------------------------------------------------------

@pytest.mark.parametrize("abuse", list(AbuseOrNeglect), ids=str)
@pytest.mark.parametrize("rapid_review", [False, True], ids=["no-rr", "rr"])
def test_a_looked_after_childs_death_needs_a_sin(abuse: AbuseOrNeglect, rapid_review: bool) -> None:
    case = facts(DEATH, abuse, looked_after=True)
    refusals = dsp_decision_refusals(case, sin=False, rapid_review=rapid_review)
    assert len(refusals) == 1
    assert refusals[0].startswith("a SIN is required")


@pytest.mark.parametrize("abuse", list(AbuseOrNeglect), ids=str)
@pytest.mark.parametrize("looked_after", [False, True], ids=["", "lac"])
@pytest.mark.parametrize("rapid_review", [False, True], ids=["no-rr", "rr"])
def test_a_near_miss_refuses_a_sin(abuse: AbuseOrNeglect, looked_after: bool, rapid_review: bool) -> None:
    case = facts(NEAR_MISS, abuse, looked_after=looked_after)
    refusals = dsp_decision_refusals(case, sin=True, rapid_review=rapid_review)
    assert len(refusals) == 1
    assert "near miss is not notified" in refusals[0]


@pytest.mark.parametrize("abuse", list(AbuseOrNeglect), ids=str)
@pytest.mark.parametrize("rapid_review", [False, True], ids=["no-rr", "rr"])
def test_a_near_miss_without_a_sin_is_the_dsps_choice(abuse: AbuseOrNeglect, rapid_review: bool) -> None:
    assert dsp_decision_refusals(facts(NEAR_MISS, abuse), sin=False, rapid_review=rapid_review) == []


@pytest.mark.parametrize(
    "case",
    [
        facts(DEATH, KNOWN),
        facts(DEATH, SUSPECTED),
        facts(HARM, KNOWN),
        facts(HARM, SUSPECTED),
        facts(HARM, SUSPECTED, looked_after=True),
        facts(DEATH, KNOWN, looked_after=True),
    ],
    ids=fact_id,
)
def test_a_sin_without_a_rapid_review_is_refused_when_abuse_is_known_or_suspected(case: CaseFacts) -> None:
    refusals = dsp_decision_refusals(case, sin=True, rapid_review=False)
    assert len(refusals) == 1
    assert "Rapid Review is required" in refusals[0]
    assert dsp_decision_refusals(case, sin=True, rapid_review=True) == []


@pytest.mark.parametrize(
    "case",
    [
        facts(DEATH, NOT_SUSPECTED, care_leaver=True),
        facts(DEATH, NOT_SUSPECTED, looked_after=True),
        facts(DEATH, NOT_SUSPECTED),
        facts(HARM, NOT_SUSPECTED),
    ],
    ids=fact_id,
)
def test_a_sin_without_a_rapid_review_is_allowed_without_suspicion(case: CaseFacts) -> None:
    assert dsp_decision_refusals(case, sin=True, rapid_review=False) == []


@pytest.mark.parametrize("rapid_review", [False, True], ids=["no-rr", "rr"])
def test_a_care_leavers_death_may_be_notified_with_or_without_a_review(rapid_review: bool) -> None:
    case = facts(DEATH, NOT_SUSPECTED, care_leaver=True)
    assert dsp_decision_refusals(case, sin=True, rapid_review=rapid_review) == []
    # "should" notify, not "must": the DSPs may decide against it.
    assert dsp_decision_refusals(case, sin=False, rapid_review=rapid_review) == []


@pytest.mark.parametrize("abuse", [KNOWN, SUSPECTED], ids=str)
def test_a_care_leavers_death_needs_no_rapid_review_even_when_abuse_is_suspected(
    abuse: AbuseOrNeglect,
) -> None:
    case = facts(DEATH, abuse, care_leaver=True)
    assert rapid_review_follows_sin(case) is False
    assert dsp_decision_refusals(case, sin=True, rapid_review=False) == []


@pytest.mark.parametrize("case", ALL_FACTS, ids=fact_id)
@pytest.mark.parametrize(("sin", "rapid_review"), DECISIONS, ids=str)
def test_refusals_are_consistent_with_the_rules(case: CaseFacts, sin: bool, rapid_review: bool) -> None:
    refusals = dsp_decision_refusals(case, sin=sin, rapid_review=rapid_review)
    duty = notification_duty(case).duty
    must_have_sin = duty is NotificationDuty.MANDATORY and not sin
    must_not_have_sin = duty is NotificationDuty.NOT_NOTIFIABLE and sin
    must_have_review = sin and not rapid_review and rapid_review_follows_sin(case)
    assert len(refusals) == sum((must_have_sin, must_not_have_sin, must_have_review))
    assert all(refusal for refusal in refusals)


@pytest.mark.parametrize("case", ALL_FACTS, ids=fact_id)
def test_every_case_has_at_least_one_allowed_decision(case: CaseFacts) -> None:
    allowed = [decision for decision in DECISIONS
               if not dsp_decision_refusals(case, sin=decision[0], rapid_review=decision[1])]
    assert allowed
    # A review without a SIN is allowed wherever a SIN is not required.
    if notification_duty(case).duty is not NotificationDuty.MANDATORY:
        assert (False, True) in allowed


# -- the path an allowed decision sets -----------------------------------------------------------

@pytest.mark.parametrize(
    ("case", "sin", "rapid_review", "path"),
    [
        (facts(HARM, SUSPECTED), True, True, CasePath.SIN_AND_RAPID_REVIEW),
        (facts(DEATH, NOT_SUSPECTED, looked_after=True), True, False, CasePath.SIN_ONLY),
        (facts(DEATH, NOT_SUSPECTED, care_leaver=True), True, False, CasePath.SIN_ONLY),
        (facts(HARM, NOT_SUSPECTED), False, True, CasePath.RAPID_REVIEW_ONLY),
        (facts(DEATH, SUSPECTED), False, True, CasePath.RAPID_REVIEW_ONLY),
        (facts(NEAR_MISS, SUSPECTED), False, True, CasePath.NEAR_MISS_RAPID_REVIEW),
        (facts(NEAR_MISS, NOT_SUSPECTED), False, True, CasePath.NEAR_MISS_RAPID_REVIEW),
        (facts(NEAR_MISS, SUSPECTED), False, False, CasePath.NO_FURTHER_ACTION),
        (facts(HARM, NOT_SUSPECTED), False, False, CasePath.NO_FURTHER_ACTION),
    ],
    ids=fact_id,
)
def test_case_path(case: CaseFacts, sin: bool, rapid_review: bool, path: CasePath) -> None:
    assert dsp_decision_refusals(case, sin=sin, rapid_review=rapid_review) == []
    assert case_path(case, sin=sin, rapid_review=rapid_review) is path


@pytest.mark.parametrize("case", ALL_FACTS, ids=fact_id)
@pytest.mark.parametrize(("sin", "rapid_review"), DECISIONS, ids=str)
def test_case_path_is_total_and_matches_the_decision(case: CaseFacts, sin: bool, rapid_review: bool) -> None:
    path = case_path(case, sin=sin, rapid_review=rapid_review)
    has_sin = path in (CasePath.SIN_AND_RAPID_REVIEW, CasePath.SIN_ONLY)
    has_review = path in (CasePath.SIN_AND_RAPID_REVIEW, CasePath.RAPID_REVIEW_ONLY,
                          CasePath.NEAR_MISS_RAPID_REVIEW)
    assert (has_sin, has_review) == (sin, rapid_review)
    assert (path is CasePath.NEAR_MISS_RAPID_REVIEW) == (
        case.category is NEAR_MISS and rapid_review and not sin
    )


@pytest.mark.parametrize(
    ("path", "at_decision"),
    [
        (CasePath.NEAR_MISS_RAPID_REVIEW, True),
        (CasePath.RAPID_REVIEW_ONLY, True),
        (CasePath.SIN_AND_RAPID_REVIEW, False),  # counts from the SIN's submission
        (CasePath.SIN_ONLY, False),
        (CasePath.NO_FURTHER_ACTION, False),
    ],
    ids=str,
)
def test_rapid_review_clock_starts_at_the_decision_only_without_a_sin(
    path: CasePath, at_decision: bool
) -> None:
    assert rapid_review_starts_at_decision(path) is at_decision
