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


# --------------------------------------------------------------------------- reslicing

from dentseg_gui.core.reslice import reslice  # noqa: E402


def _linear_volume(dirs=np.eye(3), dtype=np.int16):
    """Stored value = 10*i + 3*j + 2*k: trilinear interpolation reproduces it exactly."""
    k, j, i = np.mgrid[0:20, 0:30, 0:40]
    vox = (10 * i + 3 * j + 2 * k).astype(dtype)
    return Volume(vox, origin=(-5, 7, 2), directions=dirs, spacing=(0.5, 0.4, 1.25), slope=2.0, intercept=-100)


def test_reslice_reproduces_a_linear_field_on_an_oblique_plane():
    v = _linear_volume()
    p = Plane.centred(v.index_to_lps([20, 15, 10]), (1, 1, 0.3), (0.2, -0.5, 1), 0.3, (25, 31))
    img = reslice(v, p)
    rr, cc = np.mgrid[0:25, 0:31]
    ijk = v.lps_to_index(p.pixel_to_lps(np.stack([cc, rr], -1)))
    expect = 2.0 * (10 * ijk[..., 0] + 3 * ijk[..., 1] + 2 * ijk[..., 2]) - 100
    assert img.dtype == np.float32
    assert np.allclose(img, expect, atol=1e-2)


def test_axis_aligned_plane_reads_the_voxels_and_outside_reads_air():
    v = _linear_volume()
    k = 7
    p = Plane.make(v.index_to_lps([0, 0, k]), (1, 0, 0), (0, 1, 0), (0.4, 0.5), (30, 40))
    assert np.array_equal(reslice(v, p), v.to_hu(v.voxels[k]))
    away = p.shifted(100.0)
    assert np.all(reslice(v, away) == v.to_hu(v.voxels.min()))


def test_slab_mean_and_mip_across_a_sphere():
    # a bright ball of radius 5 mm in a 0.5 mm grid; planes through and beside its centre
    n = 41
    k, j, i = np.mgrid[0:n, 0:n, 0:n] * 0.5 - 10.0
    ball = ((i ** 2 + j ** 2 + k ** 2) <= 25.0).astype(np.uint16) * 1000
    v = Volume(ball, origin=(-10, -10, -10), directions=np.eye(3), spacing=(0.5, 0.5, 0.5))
    centre = Plane.centred((0, 0, 0), (1, 0, 0), (0, 1, 0), 0.25, (81, 81))
    disc = reslice(v, centre) > 500
    area = disc.sum() * 0.25 ** 2
    assert abs(area - np.pi * 25.0) / (np.pi * 25.0) < 0.05
    beside = centre.shifted(4.0)           # a 3 mm radius circle 4 mm from the centre
    area4 = (reslice(v, beside) > 500).sum() * 0.25 ** 2
    assert abs(area4 - np.pi * 9.0) / (np.pi * 9.0) < 0.08
    mip = reslice(v, beside, slab_mm=2.0, mode="mip")
    mean = reslice(v, beside, slab_mm=2.0, mode="mean")
    assert (mip > 500).sum() > (reslice(v, beside) > 500).sum()   # the slab reaches toward the centre
    assert mean.max() <= mip.max() and np.all(mean <= mip + 1e-3)
    with pytest.raises(VolumeError):
        reslice(v, beside, slab_mm=-1)


def test_preview_covers_the_same_area_at_half_resolution():
    from dentseg_gui.core.reslice import preview_plane, reslice_preview
    v = _linear_volume()
    p = Plane.centred(v.index_to_lps([20, 15, 10]), (1, 1, 0.3), (0.2, -0.5, 1), 0.3, (25, 31))
    img, coarse = reslice_preview(v, p)
    assert coarse.shape == (13, 16) and coarse.spacing == (0.6, 0.6)
    # preview pixel (0, 0) stands for the full pixels (0..1, 0..1): its centre is their middle
    assert np.allclose(coarse.pixel_to_lps([0, 0]), p.pixel_to_lps([0.5, 0.5]))
    assert np.allclose(coarse.normal, p.normal)
    assert np.allclose(img, reslice(v, coarse)) and img.shape == coarse.shape
    full = reslice(v, p)
    # a linear field: the preview pixel equals the mean of the 2x2 block it stands for
    assert np.allclose(img[:12, :15], full[:24, :30].reshape(12, 2, 15, 2).mean(axis=(1, 3)), atol=2e-2)
    assert preview_plane(p, 1) is p


def test_reslice_of_a_contiguous_int16_volume_matches_float64_interpolation():
    rng = np.random.default_rng(5)
    vox = rng.integers(-1000, 3000, (20, 24, 28), dtype=np.int16)
    v = Volume(vox, (1, 2, 3), np.eye(3), (0.3, 0.4, 0.5), 2.0, -100)
    for _ in range(10):
        p = Plane.centred(v.index_to_lps(rng.uniform([0, 0, 0], [27, 23, 19])), rng.normal(size=3),
                          rng.normal(size=3), 0.25, (21, 23))
        rr, cc = np.mgrid[0:21, 0:23]
        ijk = v.lps_to_index(p.pixel_to_lps(np.stack([cc, rr], -1)))
        inside = np.all((ijk >= 0) & (ijk <= np.array([27, 23, 19])), axis=-1)
        i0 = np.minimum(np.floor(ijk).astype(int), [26, 22, 18]).clip(0)
        t = ijk - i0
        ref = np.zeros(ijk.shape[:2])
        for di in (0, 1):
            for dj in (0, 1):
                for dk in (0, 1):
                    w = (np.where(di, t[..., 0], 1 - t[..., 0]) * np.where(dj, t[..., 1], 1 - t[..., 1])
                         * np.where(dk, t[..., 2], 1 - t[..., 2]))
                    idx = np.clip(i0 + [di, dj, dk], 0, [27, 23, 19])
                    ref += w * vox[idx[..., 2], idx[..., 1], idx[..., 0]]
        img = reslice(v, p)
        assert np.abs(img - (2.0 * ref - 100))[inside].max() < 0.1      # float32 of values up to 6000
        assert np.all(img[~inside] == v.to_hu(vox.min()))
