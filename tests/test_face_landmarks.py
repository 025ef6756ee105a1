"""FaceMesh landmarks (the packaged MediaPipe models) on scikit-image's shipped sample faces."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.real

cv2 = pytest.importorskip("cv2")


@pytest.fixture(scope="module")
def mesh():
    from generators.face_landmarks import FaceMesh, find_model_dir

    return FaceMesh(find_model_dir())


@pytest.fixture(scope="module")
def astronaut():
    from skimage import data

    return data.astronaut()


def _inside(points: np.ndarray, box: np.ndarray, margin: float) -> np.ndarray:
    w, h = box[2] - box[0], box[3] - box[1]
    lo = box[:2] - margin * np.array([w, h])
    hi = box[2:] + margin * np.array([w, h])
    return ((points[:, :2] >= lo) & (points[:, :2] <= hi)).all(1)


def test_astronaut_landmarks_land_in_the_face_box(mesh, astronaut):
    faces = mesh(astronaut)
    assert len(faces) == 1
    face = faces[0]
    assert face.landmarks.shape == (468, 3)
    det = mesh.detect(astronaut)
    assert len(det) == 1
    # every landmark inside the detector's face box (FaceMesh reaches the forehead, so 15% slack)
    assert _inside(face.landmarks, det[0].box, 0.15).all()
    lm = face.landmarks
    # anatomy: eyes above the nose tip, nose above the mouth, mouth above the chin;
    # the image-left eye corner (33) left of the image-right one (263)
    assert lm[33, 0] < lm[263, 0]
    assert max(lm[159, 1], lm[386, 1]) < lm[1, 1] < lm[13, 1] < lm[152, 1]
    # the known face of the sample: eyes around y~100-110, chin ~170 (512 x 512 image)
    assert 90 < lm[159, 1] < 120 and 150 < lm[152, 1] < 190


def test_lfw_faces_are_found_and_landmarks_stay_on_the_face(mesh):
    from skimage import data

    faces = data.lfw_subset()[:12]  # 25 x 25 grey crops, face filling the frame
    found = 0
    for face in faces:
        grey = cv2.resize((face * 255).astype(np.uint8), (100, 100), interpolation=cv2.INTER_CUBIC)
        grey = cv2.copyMakeBorder(grey, 50, 50, 50, 50, cv2.BORDER_REPLICATE)
        result = mesh(np.repeat(grey[..., None], 3, axis=2))
        if len(result) != 1:
            continue
        found += 1
        # the 100 x 100 face crop sits at (50, 50)-(150, 150): landmarks land on it
        assert _inside(result[0].landmarks, np.array([50.0, 50.0, 150.0, 150.0]), 0.12).all()
    assert found >= 9, f"only {found} of 12 LFW faces found"


def test_no_face_and_two_faces(mesh, astronaut):
    from skimage import data

    assert mesh(data.coffee()) == []
    assert mesh(np.full((200, 300, 3), 127, np.uint8)) == []
    crop = astronaut[20:240, 110:340]
    pair = np.concatenate([crop, crop[:, ::-1]], axis=1)
    faces = mesh(pair)
    assert len(faces) == 2
    assert faces[0].box[2] <= faces[1].box[0] + 5  # numbered left to right


def test_tracking_follows_a_shift(mesh, astronaut):
    face = mesh(astronaut)[0]
    shifted = np.roll(astronaut, (4, 7), axis=(0, 1))
    tracked = mesh.track(shifted, face.landmarks)
    assert tracked is not None
    shift = (tracked.landmarks[:, :2] - face.landmarks[:, :2]).mean(0)
    assert np.allclose(shift, [7, 4], atol=1.0)


def test_small_face_in_a_big_picture_is_found_by_tiles(mesh, astronaut):
    canvas = np.full((2048, 2048, 3), 200, np.uint8)
    canvas[1536:, :512] = astronaut  # the face is ~95 px of 2048: too small for one 128 px pass
    faces = mesh(canvas)
    assert len(faces) == 1
    assert _inside(faces[0].landmarks, np.array([170.0, 1590.0, 280.0, 1720.0]), 0.05).all()
