"""Volume loading: DICOM series / enhanced DICOM / NIfTI / NRRD give the same voxels and LPS
geometry; every kind of bad input is one clear VolumeError; memory, progress and Cancel."""

from __future__ import annotations

import random
import shutil
import tracemalloc

import numpy as np
import pydicom
import pytest

from dentseg_gui.core.volume import Volume, VolumeError
from dentseg_gui.core.volume_io import (VolumeCancelled, load_volume, volume_stem, write_dicom_series,
                                        write_nifti, write_nrrd)
from dentseg_gui.core.volume_io import common as vio_common
from volume_samples import oblique_volume, write_enhanced_ct


def _same(a: Volume, b: Volume, tol: float = 1e-4) -> None:
    assert a.shape == b.shape
    assert np.array_equal(a.to_hu(a.voxels), b.to_hu(b.voxels))
    assert np.abs(a.affine - b.affine).max() < tol, (a.affine, b.affine)


@pytest.fixture(scope="module")
def vol() -> Volume:
    return oblique_volume()


@pytest.fixture(scope="module")
def series(vol, tmp_path_factory):
    d = tmp_path_factory.mktemp("series")
    return d, write_dicom_series(vol, d / "ct", series_description="oblique test")


# --------------------------------------------------------------------------- same volume, every format


def test_every_format_gives_the_same_voxels_and_lps_geometry(vol, series, tmp_path):
    folder = series[1][0].parent
    files = {"dicom": folder,
             "enhanced": write_enhanced_ct(vol, tmp_path / "enh.dcm", frame_order=[5, 0, 11, 3, 1, 2, 4, 6, 7,
                                                                                    8, 9, 10]),
             "nii": write_nifti(vol, tmp_path / "v.nii"), "nii.gz": write_nifti(vol, tmp_path / "v.nii.gz"),
             "nrrd": write_nrrd(vol, tmp_path / "v.nrrd"), "raw nrrd": write_nrrd(vol, tmp_path / "r.nrrd", False)}
    for name, path in files.items():
        got = load_volume(path)
        _same(got, vol)
        assert np.allclose(got.directions, vol.directions, atol=1e-6), name
        assert np.allclose(got.spacing, vol.spacing, atol=1e-6), name
        if name != "nrrd" and name != "raw nrrd":       # NRRD stores rescaled values (no slope field)
            assert got.voxels.dtype == np.int16 and got.intercept == -1024.0, name
            assert np.array_equal(got.voxels, vol.voxels), name
        else:
            assert got.voxels.dtype == np.int16 and got.intercept == 0.0
        assert got.voxels.flags.c_contiguous


def test_shuffled_file_order_and_names_load_identically(vol, series, tmp_path):
    src = series[1]
    names = [f"x{random.Random(i).randrange(10**6):06d}_{i}" for i in range(len(src))]
    random.Random(7).shuffle(names)
    for p, name in zip(src, names):
        shutil.copy(p, tmp_path / name)           # no suffix, random names, any order
    (tmp_path / "README.txt").write_text("not dicom", encoding="utf-8")
    got = load_volume(tmp_path)
    _same(got, load_volume(src[0].parent), tol=1e-9)
    assert any("not DICOM images" in n for n in got.meta["notes"])


def test_dicom_meta_keeps_identity_and_files(vol, series):
    folder = series[1][0].parent
    v = load_volume(folder)
    m = v.meta
    assert m["PatientName"] == "Test^Volume" and m["PatientID"] == "VOL-1"
    assert m["PatientBirthDate"] == "19800101" and m["PatientSex"] == "F"
    assert m["Modality"] == "CT" and m["SeriesDescription"] == "oblique test"
    for key in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "StudyDate"):
        assert m[key]
    assert [p.split("/")[-1] for p in m["files"]] == [p.name for p in series[1]]
    assert m["format"] == "DICOM series" and volume_stem(folder) == "ct"


def test_nifti_written_by_nibabel_is_converted_from_ras_to_lps(tmp_path):
    nib = pytest.importorskip("nibabel")
    data = np.zeros((6, 5, 4), np.int16)            # (x, y, z) as nibabel indexes it
    data[1, 2, 3] = 500
    affine = np.array([[0.5, 0, 0, -10], [0, 0.4, 0, 20], [0, 0, 2.0, 30], [0, 0, 0, 1]])
    img = nib.Nifti1Image(data, affine)
    img.header.set_qform(affine, code=1)
    nib.save(img, tmp_path / "ras.nii.gz")
    v = load_volume(tmp_path / "ras.nii.gz")
    assert v.shape == (4, 5, 6)
    k, j, i = np.argwhere(v.voxels == 500)[0]
    assert (i, j, k) == (1, 2, 3)
    ras = affine @ [1, 2, 3, 1]
    assert np.allclose(v.index_to_lps([i, j, k]), (-ras[0], -ras[1], ras[2]))
    assert v.meta["affine_source"] == "sform"


def test_nrrd_written_by_pynrrd_in_ras_space_is_converted_to_lps(tmp_path):
    nrrd = pytest.importorskip("nrrd")
    data = np.zeros((4, 5, 6), np.int16)            # C order: (z, y, x)
    data[3, 2, 1] = 700
    header = {"space": "right-anterior-superior", "space directions": np.diag([0.5, 0.4, 2.0]),
              "space origin": np.array([-10.0, 20.0, 30.0]), "kinds": ["domain"] * 3, "encoding": "gzip"}
    nrrd.write(str(tmp_path / "ras.nrrd"), data, header, index_order="C")
    v = load_volume(tmp_path / "ras.nrrd")
    k, j, i = np.argwhere(v.voxels == 700)[0]
    assert (i, j, k) == (1, 2, 3)
    assert np.allclose(v.index_to_lps([1, 2, 3]), (10 - 0.5, -20 - 0.8, 36.0))
    # and pynrrd reads our NRRD as we wrote it
    ours = oblique_volume(shape=(3, 4, 5))
    write_nrrd(ours, tmp_path / "ours.nrrd")
    arr, hdr = nrrd.read(str(tmp_path / "ours.nrrd"), index_order="C")
    assert np.array_equal(arr, ours.to_hu(ours.voxels))
    assert np.allclose(np.asarray(hdr["space directions"]).T, ours.directions * np.asarray(ours.spacing))


def test_rescale_that_differs_between_slices_gives_float_hu_with_a_note(series, tmp_path):
    for n, p in enumerate(series[1]):
        ds = pydicom.dcmread(p)
        if n == 3:
            ds.RescaleIntercept = -1000
        ds.save_as(tmp_path / p.name)
    v = load_volume(tmp_path)
    ref = load_volume(series[1][0].parent)
    assert v.voxels.dtype == np.float32 and v.slope == 1.0 and v.intercept == 0.0
    diff = v.to_hu(v.voxels) - ref.to_hu(ref.voxels)
    assert np.allclose(diff[3], 24) and np.allclose(np.delete(diff, 3, axis=0), 0)
    assert any("differ between slices" in n for n in v.meta["notes"])


# --------------------------------------------------------------------------- bad input


def _copy_series(series, dest, edit=None, skip=()):
    dest.mkdir(exist_ok=True)
    for n, p in enumerate(series[1]):
        if n in skip:
            continue
        if edit is None:
            shutil.copy(p, dest / p.name)
        else:
            ds = pydicom.dcmread(p)
            edit(n, ds)
            ds.save_as(dest / p.name)
    return dest


def test_two_series_in_a_folder_opens_the_largest_and_names_the_other(vol, series, tmp_path):
    d = _copy_series(series, tmp_path / "two")
    small = oblique_volume(shape=(3, 8, 8), seed=4)
    small.meta = {"SeriesDescription": "scout"}
    write_dicom_series(small, tmp_path / "small", prefix="SC")
    for p in (tmp_path / "small").iterdir():
        shutil.copy(p, d / p.name)
    v = load_volume(d)
    _same(v, vol)
    note = " ".join(v.meta["notes"])
    assert "holds 2 series" in note and "'scout'" in note and "opened the largest" in note
    uid = load_volume(tmp_path / "small").meta["SeriesInstanceUID"]
    assert load_volume(d, series_uid=uid).shape == (3, 8, 8)


@pytest.mark.parametrize("case, expect", [
    ("missing", "a slice is missing between"),
    ("duplicate", "a duplicated slice"),
    ("nonuniform", "not uniform"),
    ("tilt", "gantry tilt"),
])
def test_broken_series_are_refused_with_one_clear_line(series, tmp_path, case, expect):
    n_dir = np.cross(*(np.asarray(pydicom.dcmread(series[1][0]).ImageOrientationPatient, float).reshape(2, 3)))
    if case == "missing":
        d = _copy_series(series, tmp_path / case, skip=(5,))
    elif case == "duplicate":
        d = _copy_series(series, tmp_path / case)
        shutil.copy(series[1][4], d / "copy_of_slice.dcm")
    elif case == "nonuniform":
        def edit(n, ds):
            if n >= 6:
                ds.ImagePositionPatient = [float(v) + 0.25 * n_dir[i] for i, v in enumerate(ds.ImagePositionPatient)]
        d = _copy_series(series, tmp_path / case, edit)
    else:
        row = np.asarray(pydicom.dcmread(series[1][0]).ImageOrientationPatient, float)[:3]

        def edit(n, ds):   # each slice 0.7 mm further along the normal and 0.12 mm sideways: ~10°
            ds.ImagePositionPatient = [float(v) + 0.12 * n * row[i] for i, v in enumerate(ds.ImagePositionPatient)]
        d = _copy_series(series, tmp_path / case, edit)
    with pytest.raises(VolumeError) as err:
        load_volume(d)
    msg = str(err.value)
    assert expect in msg and "\n" not in msg, msg
    assert str(d) in msg
    if case in ("missing", "duplicate"):
        assert ".dcm'" in msg                       # names the files around the problem


def test_rounded_positions_and_a_tilt_under_half_a_pixel_still_load(tmp_path):
    fine = oblique_volume(shape=(30, 16, 18), spacing=(0.3, 0.3, 0.08), seed=6)
    files = write_dicom_series(fine, tmp_path / "fine")
    row = np.asarray(pydicom.dcmread(files[0]).ImageOrientationPatient, float)[:3]
    for n, p in enumerate(files):             # positions rounded to 0.01 mm, as some exports write them
        ds = pydicom.dcmread(p)
        ds.ImagePositionPatient = [f"{float(v):.2f}" for v in ds.ImagePositionPatient]
        ds.save_as(p)
    v = load_volume(tmp_path / "fine")
    assert v.spacing[2] == pytest.approx(0.08, abs=1e-3) and np.array_equal(v.voxels, fine.voxels)
    for n, p in enumerate(files):             # + a sideways drift of 0.1 mm over the stack: a note, no error
        ds = pydicom.dcmread(p)
        ds.ImagePositionPatient = [float(v) + 0.1 * n / 29 * row[i] for i, v in enumerate(ds.ImagePositionPatient)]
        ds.save_as(p)
    v = load_volume(tmp_path / "fine")
    assert np.array_equal(v.voxels, fine.voxels)
    assert any("drift 0.10" in n and "under half a pixel" in n for n in v.meta["notes"])


def test_truncated_or_damaged_file_inside_the_series_is_named(series, tmp_path):
    d = _copy_series(series, tmp_path / "trunc")
    victim = d / series[1][7].name
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) - 200])      # pixel data cut short
    with pytest.raises(VolumeError, match=f"'{victim}' is truncated"):
        load_volume(d)
    victim.write_bytes(data[:132] + b"\xff" * 40)    # 'DICM' then garbage
    with pytest.raises(VolumeError, match="truncated or damaged") as err:
        load_volume(d)
    assert victim.name in str(err.value)


def test_volume_too_large_for_the_memory_is_refused_before_allocating(tmp_path, monkeypatch):
    big = oblique_volume(shape=(40, 200, 250), seed=2)               # 4 MB of int16
    paths = [write_dicom_series(big, tmp_path / "s")[0].parent, write_nifti(big, tmp_path / "v.nii.gz"),
             write_nrrd(big, tmp_path / "v.nrrd"), write_enhanced_ct(big, tmp_path / "e.dcm")]
    monkeypatch.setattr(vio_common, "available_memory_bytes", lambda: 3 * 2 ** 20)
    for path in paths:
        tracemalloc.start()
        try:
            with pytest.raises(VolumeError, match="too large for the memory") as err:
                load_volume(path)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert "250×200×40 voxels of 16-bit need 4 MiB but only 3 MiB is free" in str(err.value)
        assert "crop" in str(err.value) and str(path.name) in str(err.value)
        assert peak < big.nbytes / 4, f"{path.name}: {peak} bytes allocated before refusing"


def test_two_dimensional_inputs_are_not_volumes(series, tmp_path, real_data):
    import cv2
    cv2.imwrite(str(tmp_path / "slice.png"), np.zeros((32, 32), np.uint8))
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(series[1][0], one / "only.dcm")
    nib = pytest.importorskip("nibabel")
    nib.save(nib.Nifti1Image(np.zeros((8, 9, 1), np.int16), np.eye(4)), tmp_path / "flat.nii")
    for path in (tmp_path / "slice.png", real_data / "dicom" / "CT_small.dcm", series[1][3], one,
                 tmp_path / "flat.nii"):
        with pytest.raises(VolumeError, match="2-D") as err:
            load_volume(path)
        assert "not a volume" in str(err.value), str(err.value)
    with pytest.raises(VolumeError, match="give its folder"):
        load_volume(series[1][3])                    # one slice of a series: points to the folder
    (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
    with pytest.raises(VolumeError, match="not a volume DentSeg reads"):
        load_volume(tmp_path / "notes.txt")
    with pytest.raises(VolumeError, match="does not exist"):
        load_volume(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(VolumeError, match="holds no DICOM images"):
        load_volume(empty)


def test_truncated_nifti_and_nrrd_are_refused(tmp_path):
    v = oblique_volume()
    for path in (write_nifti(v, tmp_path / "v.nii"), write_nrrd(v, tmp_path / "v.nrrd"),
                 write_nrrd(v, tmp_path / "r.nrrd", compress=False)):
        data = path.read_bytes()
        path.write_bytes(data[: len(data) * 2 // 3])
        with pytest.raises(VolumeError, match="truncated") as err:
            load_volume(path)
        assert str(path) in str(err.value)


# --------------------------------------------------------------------------- progress, cancel, memory


def test_progress_is_reported_and_cancel_stops_the_load(series):
    folder = series[1][0].parent
    seen = []
    load_volume(folder, progress=lambda d, t, s: seen.append((d, t)))
    assert seen[-1][0] == seen[-1][1] and len(seen) >= 3
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > 3

    with pytest.raises(VolumeCancelled):
        load_volume(folder, progress=lambda *a: None, should_stop=stop)


@pytest.mark.parametrize("fmt", ["dicom", "enhanced", "nii.gz", "nrrd"])
def test_peak_memory_stays_within_one_and_a_half_volumes(tmp_path, fmt):
    v = oblique_volume(shape=(48, 160, 192), seed=3)          # 2.9 MB of int16
    if fmt == "dicom":
        path = write_dicom_series(v, tmp_path / "s")[0].parent
    elif fmt == "enhanced":
        path = write_enhanced_ct(v, tmp_path / "e.dcm")
    elif fmt == "nii.gz":
        path = write_nifti(v, tmp_path / "v.nii.gz")
    else:
        path = write_nrrd(v, tmp_path / "v.nrrd")
    load_volume(path)                      # warm the imports outside the measurement
    tracemalloc.start()
    try:
        got = load_volume(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert np.array_equal(got.to_hu(got.voxels), v.to_hu(v.voxels))
    assert peak <= 1.5 * v.nbytes, f"{fmt}: peak {peak / 1e6:.2f} MB for a {v.nbytes / 1e6:.2f} MB volume"


def test_jpeg2000_series_loads_with_a_decoder_or_says_which_to_install(tmp_path, real_data, monkeypatch):
    from pydicom.pixels import get_decoder, pixel_array
    src = real_data / "dicom" / "JPEG2000.dcm"
    for k in range(3):
        ds = pydicom.dcmread(src)
        ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, k * 1.0], [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.5, 0.5]
        ds.SOPInstanceUID = f"{ds.SOPInstanceUID}.{k}"
        ds.save_as(tmp_path / f"{k}.dcm")
    if get_decoder(pydicom.dcmread(src).file_meta.TransferSyntaxUID).is_available:
        v = load_volume(tmp_path)
        assert v.shape[0] == 3 and np.array_equal(v.voxels[1], pixel_array(src))
    else:
        with pytest.raises(VolumeError, match="JPEG 2000.*no decoder for it is installed.*pip install pylibjpeg"):
            load_volume(tmp_path)
    from pydicom import pixels as pydicom_pixels

    class NoDecoder:
        is_available, missing_dependencies = False, ["pylibjpeg", "pylibjpeg-openjpeg"]

    monkeypatch.setattr(pydicom_pixels, "get_decoder", lambda ts: NoDecoder())
    with pytest.raises(VolumeError, match="JPEG 2000.*no decoder for it is installed .pylibjpeg; pylibjpeg-openjpeg"):
        load_volume(tmp_path)
