"""Expression presets move only their own landmarks; driving motion transfers relative shifts."""
from __future__ import annotations

import numpy as np
import pytest

from generators.base import InvalidInput

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def landmarks():
    from skimage import data

    from generators.face_landmarks import FaceMesh, find_model_dir

    return FaceMesh(find_model_dir())(data.astronaut())[0].landmarks.astype(np.float64)


def _moved(landmarks, name, amount=1.0):
    from generators.face_motion import Deformer

    d = Deformer(landmarks)
    disp = getattr(d, name)(amount)
    return np.linalg.norm(d.apply(disp)[:, :2] - landmarks[:, :2], axis=1), d


def test_blink_moves_the_upper_lids_only(landmarks):
    from generators.face_motion import (
        BROW_L,
        BROW_R,
        EYE_L_LOWER,
        EYE_L_UPPER,
        EYE_R_LOWER,
        EYE_R_UPPER,
        LIPS_OUTER_LOWER,
        LIPS_OUTER_UPPER,
    )

    move, d = _moved(landmarks, "blink")
    opening = np.linalg.norm(landmarks[159, :2] - landmarks[145, :2])
    assert move[[159, 386]].min() > 0.7 * opening  # the lids close
    still = list(EYE_R_LOWER + EYE_L_LOWER + LIPS_OUTER_UPPER + LIPS_OUTER_LOWER + BROW_R + BROW_L) + [1, 152, 10]
    assert move[still].max() < 1e-6
    assert (move > 1e-6).sum() < 60  # lids and the skin just above them
    assert set(np.nonzero(move > 1e-6)[0]) >= set(EYE_R_UPPER + EYE_L_UPPER)


def test_smile_moves_the_mouth_not_the_eyes(landmarks):
    from generators.face_motion import BROW_L, BROW_R, EYE_L_UPPER, EYE_R_UPPER

    move, d = _moved(landmarks, "smile")
    unit = d.frame.unit
    assert move[[61, 291]].min() > 0.08 * unit
    still = list(EYE_R_UPPER + EYE_L_UPPER + BROW_R + BROW_L) + [33, 263, 10, 152, 1]
    assert move[still].max() < 1e-6
    # the corners go outward and up
    moved = d.apply(d.smile(1.0))
    assert moved[61, 0] < landmarks[61, 0] and moved[291, 0] > landmarks[291, 0]
    assert moved[61, 1] < landmarks[61, 1] and moved[291, 1] < landmarks[291, 1]


def test_brows_move_up_and_leave_eyes_and_mouth(landmarks):
    from generators.face_motion import BROW_L, BROW_R, EYE_L_LOWER, EYE_L_UPPER, EYE_R_LOWER, EYE_R_UPPER

    move, d = _moved(landmarks, "brows")
    moved = d.apply(d.brows(1.0))
    assert (moved[list(BROW_R + BROW_L), 1] < landmarks[list(BROW_R + BROW_L), 1] - 0.08 * d.frame.unit).all()
    still = list(EYE_R_UPPER + EYE_L_UPPER + EYE_R_LOWER + EYE_L_LOWER) + [61, 291, 13, 14, 152, 1]
    assert move[still].max() < 1e-6


def test_jaw_opens_the_lips_and_keeps_the_upper_lip(landmarks):
    from generators.face_motion import Deformer

    d = Deformer(landmarks)
    moved = d.apply(d.jaw(0.3))
    assert moved[14, 1] - landmarks[14, 1] > 0.25 * d.frame.unit
    assert moved[152, 1] > landmarks[152, 1]
    assert np.abs(moved[[13, 0, 1, 33, 263], :2] - landmarks[[13, 0, 1, 33, 263], :2]).max() < 1e-6


def test_head_turn_and_nod_move_the_whole_face(landmarks):
    from generators.face_motion import Deformer

    d = Deformer(landmarks)
    zero = np.zeros((468, 2))
    assert np.allclose(d.apply(zero), landmarks, atol=1e-6)  # the round trip is exact
    yaw = d.apply(zero, yaw=0.2)[:, :2] - landmarks[:, :2]
    pitch = d.apply(zero, pitch=0.1)[:, :2] - landmarks[:, :2]
    assert np.abs(yaw[:, 0]).mean() > 2.0 and np.abs(pitch[:, 1]).mean() > 1.0


def test_relative_transfer_reproduces_a_shift(landmarks):
    from generators.face_motion import relative_transfer

    shift = np.array([6.0, -3.0, 0.0])
    out = relative_transfer(landmarks, landmarks + shift, landmarks)
    assert np.allclose(out - landmarks, shift)
    # a driving face twice as big moves the portrait half as far (FOMM's adapt_movement_scale)
    big = landmarks * 2.0
    out = relative_transfer(landmarks, big + shift, big)
    assert np.allclose(out - landmarks, shift / 2.0, atol=1e-6)


def test_preset_timing_and_parsing():
    from generators.face_motion import parse_presets, preset_tracks

    specs = parse_presets(["smile:0.5@1-2", "blink@0.5", "nod"])
    assert specs[0].intensity == 0.5 and specs[0].start == 1.0 and specs[0].end == 2.0
    tr = preset_tracks(specs, 30, 10.0, np.random.default_rng(0))
    assert tr.smile[:10].max() == 0 and tr.smile[21:].max() == 0 and 0.45 < tr.smile.max() <= 0.5
    assert tr.blink[5:8].max() == pytest.approx(1.0) and tr.blink[:5].max() == 0 and tr.blink[9:].max() == 0
    assert np.abs(tr.pitch).max() > 0.05
    for bad in (["wink"], ["smile:3"], ["smile@3-1"], ["smile:x"]):
        with pytest.raises(InvalidInput):
            parse_presets(bad)
    with pytest.raises(InvalidInput, match="after the clip ends"):
        preset_tracks(parse_presets(["smile@9"]), 30, 10.0, np.random.default_rng(0))
