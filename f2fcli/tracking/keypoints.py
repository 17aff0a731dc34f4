"""Keypoint tables on the 468-vertex MediaPipe FaceMesh topology.

Face2Face^rho draws landmark images from 72 keypoints (iBUG-68 semantics with
8-point eyes) at three scales: all 72 at 1/4 of the output size, a 27-point
subset at 1/8 and an 8-point subset at 1/16.  This module holds

* ``K72``: the MediaPipe vertex index of each of the 72 keypoints, in the
  official Face2Face^rho order (design notes ``face_model_mp3dmm.md`` §3.3);
* ``K27`` / ``K8``: positions *within the 72* of the coarse subsets, plus
  ``K27_MP`` / ``K8_MP`` with the corresponding MediaPipe vertex indices;
* ``PARTS``: which of the 72 belong to which facial part;
* ``STROKES``: the polylines/dots the landmark-image drawer renders per scale
  (connectivity of the official drawer, with its skipped eye point 49 fixed);
* MediaPipe lid and lip contour loops used to build the expression rig.

"Image-left" is the subject's right side in an unmirrored image; in the
canonical model it has x < 0.  ARKit-style names (``...Left``) are
subject-relative.  All tables are facts about index layouts, not code.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- sizes ----------------------------------------------------------------------

N_MESH = 468  # FaceMesh vertices (the face model's topology)
N_LANDMARKS = 478  # the landmarker's output: the mesh, then five points per iris
IRIS_CENTRES = (468, 473)  # image-left eye first; each followed by four rim points
IRISES = tuple(tuple(range(c, c + 5)) for c in IRIS_CENTRES)  # centre and rim, per eye
IRIS_POINTS = slice(N_MESH, N_LANDMARKS)  # both irises' points within the landmarks
N_KEYPOINTS = 72

# --- the 72 keypoints (official order) ---------------------------------------

K72: tuple[int, ...] = (
    # 0-8 contour, image-left half, ear level -> chin (8 = menton)
    127, 234, 93, 132, 58, 136, 150, 176, 152,
    # 9-16 contour, image-right half, ear level -> next to the chin
    356, 454, 323, 361, 288, 365, 379, 400,
    # 17-21 brow image-left, outer -> inner
    70, 63, 105, 66, 107,
    # 22-26 brow image-right, inner -> outer
    336, 296, 334, 293, 300,
    # 27-30 nose bridge, top -> tip (30 = pronasale)
    168, 197, 5, 4,
    # 31-35 nose base, image-left -> right (33 = subnasale)
    75, 97, 2, 326, 305,
    # 36-43 eye image-left: outer corner, upper lid outer->inner, inner corner,
    # lower lid inner->outer
    33, 161, 159, 157, 133, 154, 145, 163,
    # 44-51 eye image-right: inner corner, upper lid inner->outer, outer corner,
    # lower lid outer->inner
    362, 384, 386, 388, 263, 390, 374, 381,
    # 52-71 mouth (52/57 outer corners, 55/60 inner corners, 62/71 outer
    # centres, 63/70 inner centres)
    61, 37, 40, 78, 81, 291, 267, 270, 308, 311, 0, 13, 402, 321, 314, 178,
    91, 84, 14, 17,
)

# Positions within K72 of the coarse subsets used by the official drawer.
K8: tuple[int, ...] = (0, 8, 9, 30, 42, 50, 52, 57)
K27: tuple[int, ...] = (
    17, 21, 22, 26,  # brow ends
    36, 38, 40, 42, 44, 46, 48, 50,  # eye corners and lid middles
    27, 31, 33, 35,  # nose
    52, 57, 62, 71, 63, 70,  # mouth corners, outer and inner centres
    0, 4, 8, 13, 9,  # contour
)
K8_MP: tuple[int, ...] = tuple(K72[i] for i in K8)
K27_MP: tuple[int, ...] = tuple(K72[i] for i in K27)

# (upper, lower) positions within K72 that must not cross: lids and inner
# lips.  Relative expression transfer can push e.g. blink + squint past
# contact; the keypoint generator clamps these pairs.
CONTACT_PAIRS: tuple[tuple[int, int], ...] = (
    (37, 43), (38, 42), (39, 41),  # image-left eye
    (45, 51), (46, 50), (47, 49),  # image-right eye
    (56, 67), (63, 70), (61, 64),  # inner lips
)

# Mirror partner of each of the 72 keypoints (index within K72).  Checked
# against the canonical mesh's mirror map in the tests.
K72_MIRROR: tuple[int, ...] = (
    *range(9, 17), 8, *range(0, 8),  # contour: 0..7 <-> 9..16, 8 is the chin
    26, 25, 24, 23, 22, 21, 20, 19, 18, 17,  # brows
    27, 28, 29, 30,  # nose bridge (midline)
    35, 34, 33, 32, 31,  # nose base
    48, 47, 46, 45, 44, 51, 50, 49,  # image-left eye -> image-right eye
    40, 39, 38, 37, 36, 43, 42, 41,  # image-right eye -> image-left eye
    57, 58, 59, 60, 61, 52, 53, 54, 55, 56,  # corners, upper lips
    62, 63,  # upper centres
    67, 68, 69, 64, 65, 66,  # lower lip sides
    70, 71,  # lower centres
)

# --- parts --------------------------------------------------------------------

PART_ORDER: tuple[str, ...] = (
    "left_brow", "right_brow", "left_eye", "right_eye", "nose", "mouth", "contour",
)
"""Drawing order of the official drawer (later parts are drawn on top).
``left``/``right`` are image sides (left = the subject's right)."""

PARTS: dict[str, tuple[int, ...]] = {
    "contour": tuple(range(0, 17)),
    "left_brow": tuple(range(17, 22)),
    "right_brow": tuple(range(22, 27)),
    "nose": tuple(range(27, 36)),
    "left_eye": tuple(range(36, 44)),
    "right_eye": tuple(range(44, 52)),
    "mouth": tuple(range(52, 72)),
}

PART_COLORS: dict[str, tuple[int, int, int]] = {
    "left_brow": (0, 0, 255),
    "right_brow": (0, 255, 0),
    "left_eye": (255, 0, 0),
    "right_eye": (255, 255, 0),
    "nose": (255, 0, 255),
    "mouth": (0, 255, 255),
    "contour": (125, 125, 125),
}
"""Colour triples of the official drawer, written to tensor channels 0, 1, 2
in that order (the official code calls them BGR but never reorders)."""


@dataclass(frozen=True)
class Stroke:
    """One drawing primitive: a polyline through K72 positions, or a dot.

    A single index is a dot; ``closed`` joins the last point to the first.
    """

    part: str
    indices: tuple[int, ...]
    closed: bool = False


# Connectivity per drawing level: 0 = 1/16 (8 points), 1 = 1/8 (27 points),
# 2 = 1/4 (all 72).  Same order as PART_ORDER so the drawer can draw in list
# order.
STROKES: tuple[tuple[Stroke, ...], ...] = (
    (
        Stroke("left_eye", (42,)),
        Stroke("right_eye", (50,)),
        Stroke("nose", (30,)),
        Stroke("mouth", (52, 57)),
        Stroke("contour", (0, 8, 9)),
    ),
    (
        Stroke("left_brow", (17, 21)),
        Stroke("right_brow", (26, 22)),
        Stroke("left_eye", (36, 38, 40, 42), closed=True),
        Stroke("right_eye", (48, 46, 44, 50), closed=True),
        Stroke("nose", (27, 33, 31)),
        Stroke("nose", (33, 35)),
        Stroke("mouth", (52, 62, 57, 71), closed=True),
        Stroke("mouth", (63,)),
        Stroke("mouth", (70,)),
        Stroke("contour", (0, 4, 8, 13, 9)),
    ),
    (
        Stroke("left_brow", (17, 18, 19, 20, 21)),
        Stroke("right_brow", (26, 25, 24, 23, 22)),
        Stroke("left_eye", (36, 37, 38, 39, 40, 41, 42, 43), closed=True),
        # The official drawer skips 49 here; we draw the full loop.
        Stroke("right_eye", (48, 47, 46, 45, 44, 51, 50, 49), closed=True),
        Stroke("nose", (27, 28, 29, 30, 33)),
        Stroke("nose", (31, 32, 33)),
        Stroke("nose", (35, 34, 33)),
        Stroke("mouth", (52, 54, 53, 62, 58, 59, 57, 65, 66, 71, 69, 68), closed=True),
        Stroke("mouth", (55, 56, 63, 61, 60, 64, 70, 67), closed=True),
        Stroke("contour", (0, 1, 2, 3, 4, 5, 6, 7, 8, 16, 15, 14, 13, 12, 11, 10, 9)),
    ),
)

# --- MediaPipe contour loops (subject's right = image-left first) -------------

# Lids run outer corner -> inner corner; index i of the upper lid sits above
# index i of the lower lid, which is what the blink shape uses.
UPPER_LID_R: tuple[int, ...] = (33, 246, 161, 160, 159, 158, 157, 173, 133)
LOWER_LID_R: tuple[int, ...] = (33, 7, 163, 144, 145, 153, 154, 155, 133)
UPPER_LID_L: tuple[int, ...] = (263, 466, 388, 387, 386, 385, 384, 398, 362)
LOWER_LID_L: tuple[int, ...] = (263, 249, 390, 373, 374, 380, 381, 382, 362)
# The ring just above each upper lid margin (the lashes and the lid's edge), one vertex
# above each of UPPER_LID_*[1:-1], in the same order.
LID_BAND_R: tuple[int, ...] = (247, 30, 29, 27, 28, 56, 190)
LID_BAND_L: tuple[int, ...] = (467, 260, 259, 257, 258, 286, 414)

# Brows, outer -> inner, upper edge then lower edge.
BROW_R: tuple[int, ...] = (70, 63, 105, 66, 107, 46, 53, 52, 65, 55)
BROW_L: tuple[int, ...] = (300, 293, 334, 296, 336, 276, 283, 282, 295, 285)

# Lips run from the image-left corner to the image-right corner.
LIP_OUTER_UPPER: tuple[int, ...] = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIP_OUTER_LOWER: tuple[int, ...] = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
LIP_INNER_UPPER: tuple[int, ...] = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIP_INNER_LOWER: tuple[int, ...] = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)

# Named single vertices used by the model and the fitter.
NOSE_TIP = 4
CHIN = 152
FOREHEAD_TOP = 10
SIDE_POINTS = (234, 454)  # the outline's outermost points beside the eyes, before the ears
MOUTH_CORNER_R = 61
MOUTH_CORNER_L = 291
EYE_OUTER_R = 33
EYE_OUTER_L = 263
