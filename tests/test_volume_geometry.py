"""Volume and Plane geometry: voxel <-> LPS, slice pixel <-> LPS, the measurement plane of a tooth."""

from __future__ import annotations

import numpy as np
import pytest

from dentseg_gui.core.volume import Plane, ToothAxis, Volume, VolumeError, plane_for_tooth


def test_volume_index_and_lps_round_trip_with_oblique_directions():
    a = np.deg2rad(20)
    dirs = np.array([[np.cos(a), np.sin(a), 0], [-np.sin(a), np.cos(a), 0], [0, 0, 1]]).T
    v = Volume(np.zeros((4, 5, 6), np.int16), origin=(10, -20, 30), directions=dirs, spacing=(0.5, 0.5, 2.0))
    ijk = np.array([[1.0, 2.0, 3.0], [0, 0, 0]])
    xyz = v.index_to_lps(ijk)
    assert np.allclose(xyz[1], (10, -20, 30))
    # +i moves 0.5 mm along the first direction, +k 2 mm along z
    assert np.allclose(v.index_to_lps([1, 0, 0]) - v.origin, 0.5 * dirs[:, 0])
    assert np.allclose(v.index_to_lps([0, 0, 1]) - v.origin, (0, 0, 2.0))
    assert np.allclose(v.lps_to_index(xyz), ijk)
    assert v.shape == (4, 5, 6) and v.voxels.dtype == np.int16


def test_volume_refuses_bad_spacing_and_2d_arrays():
    with pytest.raises(VolumeError):
        Volume(np.zeros((4, 5, 6)), (0, 0, 0), np.eye(3), (0.5, 0.0, 1.0))
    with pytest.raises(VolumeError):
        Volume(np.zeros((4, 5)), (0, 0, 0), np.eye(3), (1, 1, 1))


def test_plane_pixels_map_like_dicom_image_position_and_orientation():
    p = Plane.make((1, 2, 3), (1, 0, 0), (0, 0, -1), (0.25, 0.5), (10, 20))
    # pixel (x=column 4, y=row 2): 4 * 0.5 mm along the row, 2 * 0.25 mm down the column
    assert np.allclose(p.pixel_to_lps([4, 2]), (1 + 2.0, 2, 3 - 0.5))
    assert np.allclose(p.lps_to_pixel(p.pixel_to_lps([[4, 2], [7.5, 3.25]])), [[4, 2], [7.5, 3.25]])
    assert np.allclose(p.matrix @ [4, 2, 0, 1], [3.0, 2, 2.5, 1])
    assert np.allclose(p.normal, np.cross((1, 0, 0), (0, 0, -1)))
    q = Plane.from_json(p.to_json())
    assert np.allclose(q.origin, p.origin) and q.spacing == p.spacing and q.shape == p.shape


def test_centred_plane_has_its_middle_at_the_centre():
    p = Plane.centred((5, 5, 5), (0, 1, 0), (0, 0, -1), 0.5, (11, 21))
    assert np.allclose(p.pixel_to_lps([10, 5]), (5, 5, 5))


def test_measurement_plane_of_a_tooth_is_apex_up_labial_left():
    # an upright incisor: apex superior (+z), lip anterior (-y in LPS), distal toward +x
    t = ToothAxis(21, incisal=np.array([0, 0, -10.0]), cej=np.array([0, 0, 0.0]), apex=np.array([0, 0, 14.0]),
                  mesiodistal=np.array([1.0, 0, 0]), labial=np.array([0, -1.0, 0]))
    p = plane_for_tooth(t, 0.2, (40, 40))
    top, bottom = p.pixel_to_lps([100, 0]), p.pixel_to_lps([100, 199])
    assert top[2] > bottom[2]                                  # apex up
    left, right = p.pixel_to_lps([0, 100]), p.pixel_to_lps([199, 100])
    assert left[1] < right[1]                                  # labial (anterior, -y) on the left
    assert abs(p.distance(t.apex)) < 1e-9 and abs(p.distance(t.incisal)) < 1e-9
    moved = plane_for_tooth(t, 0.2, (40, 40), offset_mm=1.5)
    assert np.isclose(abs(moved.distance(t.apex) - p.distance(t.apex)), 1.5)
    assert np.isclose(moved.origin[0] - p.origin[0], 1.5)      # + toward distal
