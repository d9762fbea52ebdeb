"""Data-driven: the QuickFIX acceptance scripts' Rejects, reproduced by validate().

Every I line of every server script (FIX 4.2 and 4.4) is built as the README says (9= inserted,
10= appended, <TIME> replaced by now). When the next line is the acceptor's answer and that answer
is a Reject (35=3), validate() with the version's dictionary must give the same
SessionRejectReason (373), RefTagID (371) and a Text (58) starting with QuickFIX's.
Every other well-framed I line must pass validate().
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fixgw.dictionary import DataDictionary
from fixgw.validation import validate
from tests.fixgw.fixcore_scripts import ScriptStep, expected_reject, framing_ok, steps, to_fields

NOW = datetime.now(UTC)
ALL_STEPS = list(steps(NOW))


def session_level(exp: dict[int, bytes], msgtype: bytes) -> str | None:
    """Why an expected Reject is the session layer's business, not the dictionary's (or None)."""
    reason = exp.get(373)
    if reason == b"9":
        return "CompID problem: the session compares 49/56 with its SessionID"
    if reason == b"10":
        return "SendingTime accuracy: the session compares 52 (and 122) with its clock"
    if reason == b"1" and exp.get(371) == b"122":
        return "PossDupFlag=Y without OrigSendingTime: checked by the session on resent messages"
    if msgtype == b"4" and reason == b"5" and 371 not in exp:
        return "SequenceReset NewSeqNo lower than expected: a sequence-number rule of the session"
    return None


def _msgtype(step: ScriptStep) -> bytes:
    for part in step.raw.split(b"\x01"):
        if part.startswith(b"35="):
            return part[3:]
    return b""


REJECT_CASES: list[ScriptStep] = []
SESSION_CASES: list[tuple[ScriptStep, str]] = []
for _s in ALL_STEPS:
    _exp = expected_reject(_s.answer) if _s.answer else None
    if _exp is None:
        continue
    _why = session_level(_exp, _msgtype(_s))
    if _why is None:
        REJECT_CASES.append(_s)
    else:
        SESSION_CASES.append((_s, _why))


def test_the_scripts_were_found_and_cover_the_rejects() -> None:
    scripts = {s.script for s in ALL_STEPS}
    assert len(scripts) >= 110  # 58 FIX.4.2 + 59 FIX.4.4 scripts, minus those without I lines
    # dictionary-level rejects: 14a-14i, 2q, RejectResentMessage, ReverseRoute* in both versions
    assert len(REJECT_CASES) == 58
    assert {s.script.split("/")[1] for s in REJECT_CASES} >= {
        "14a_BadField.def",
        "14b_RequiredFieldMissing.def",
        "14c_TagNotDefinedForMsgType.def",
        "14d_TagSpecifiedWithoutValue.def",
        "14e_IncorrectEnumValue.def",
        "14f_IncorrectDataFormat.def",
        "14g_HeaderBodyTrailerFieldsOutOfOrder.def",
        "14h_RepeatedTag.def",
        "14i_RepeatingGroupCountNotEqual.def",
        "2q_MsgTypeNotValid.def",
        "RejectResentMessage.def",
        "ReverseRoute.def",
        "ReverseRouteWithEmptyRoutingTags.def",
    }
    # the session-level ones are left out explicitly, by reason (see session_level)
    assert {s.script.split("/")[1] for s, _ in SESSION_CASES} == {
        "11c_NewSeqNoLess.def",
        "2f_PossDupOrigSendingTimeTooHigh.def",
        "2g_PossDupNoOrigSendingTime.def",
        "2k_CompIDDoesNotMatchProfile.def",
        "2o_SendingTimeValueOutOfRange.def",
    }


@pytest.mark.parametrize("step", REJECT_CASES, ids=lambda s: f"{s.script}:{s.lineno}")
def test_reject_matches_quickfix(step: ScriptStep) -> None:
    assert step.answer is not None
    exp = expected_reject(step.answer)
    assert exp is not None
    dd = DataDictionary.builtin(step.begin_string)
    assert framing_ok(step.raw)
    r = validate(dd, to_fields(step.raw))
    assert r is not None, "expected a Reject"
    assert r.text.startswith(exp[58].decode()), (r, exp[58])
    if 371 in exp:
        assert r.ref_tag == int(exp[371])
    else:
        assert r.ref_tag is None
    if 373 in exp:
        assert r.reason == int(exp[373])
    else:
        # QuickFIX writes no 373 in FIX.4.2 for reasons beyond 11 (4.2 defines 0..11 only)
        assert step.begin_string == "FIX.4.2" and r.reason > 11


def _garbled(step: ScriptStep) -> str | None:
    """Why the framer (not validate) deals with this I line, or None."""
    try:
        fields = to_fields(step.raw)
    except ValueError:
        return "tag is not a number: garbled, dropped by the framer"
    if not framing_ok(step.raw):
        return "BodyLength/CheckSum wrong or 8/9 not leading: dropped by the framer"
    if [t for t, _ in fields[:3]] != [8, 9, 35]:
        return "MsgType not third: QuickFIX ignores it as garbled"
    return None


def test_other_messages_pass_validation() -> None:
    checked = 0
    garbled: set[str] = set()
    for step in ALL_STEPS:
        exp = expected_reject(step.answer) if step.answer else None
        if exp is not None:
            continue
        why = _garbled(step)
        if why is not None:
            garbled.add(step.script.split("/")[1])
            if why.startswith("MsgType not third"):
                # validate answers 14 if it is ever asked; the framer must drop it first
                r = validate(DataDictionary.builtin(step.begin_string), to_fields(step.raw))
                assert r is not None and r.reason == 14
            continue
        r = validate(DataDictionary.builtin(step.begin_string), to_fields(step.raw))
        assert r is None, (step.script, step.lineno, r, step.raw)
        checked += 1
    assert checked >= 400
    assert garbled == {
        "1d_InvalidLogonLengthInvalid.def",
        "2d_GarbledMessage.def",
        "2m_BodyLengthValueNotCorrect.def",
        "2t_FirstThreeFieldsOutOfOrder.def",
        "3b_InvalidChecksum.def",
        "3c_GarbledMessage.def",
    }
