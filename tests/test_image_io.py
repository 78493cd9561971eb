"""Image loading: every format round-trips its raw values, every bad file gives a clear error.

Files are built in tmp_path with known pixel values (OpenCV for PNG/JPEG/TIFF/BMP,
pydicom for DICOM, a tiny hand-written TIFF for layouts OpenCV does not write), plus
the real DICOM files and the real cephalogram in shared/data/real.
"""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels import get_decoder
from pydicom.uid import JPEG2000, ExplicitVRLittleEndian, JPEGBaseline8Bit, generate_uid

from dentseg_gui.core import image_io
from dentseg_gui.core.errors import DentsegError, ImageLoadError
from dentseg_gui.core.image_io import SUPPORTED_SUFFIXES, is_supported, load_image

RNG_SEED = 1234
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
J2K_DECODER_AVAILABLE = get_decoder(JPEG2000).is_available


# --------------------------------------------------------------------------- builders


def write_cv2(path: Path, arr: np.ndarray) -> Path:
    ok, enc = cv2.imencode(path.suffix, arr)
    assert ok
    enc.tofile(str(path))
    return path


def gray16(shape=(40, 48)) -> np.ndarray:
    rng = np.random.default_rng(RNG_SEED)
    return rng.integers(0, 65536, size=shape, dtype=np.uint16)


def gray8(shape=(40, 48)) -> np.ndarray:
    rng = np.random.default_rng(RNG_SEED)
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def bgr8(shape=(40, 48)) -> np.ndarray:
    rng = np.random.default_rng(RNG_SEED + 1)
    return rng.integers(0, 256, size=shape + (3,), dtype=np.uint8)


def luminance_bgr(arr: np.ndarray) -> np.ndarray:
    a = arr.astype(np.float64)
    return 0.299 * a[..., 2] + 0.587 * a[..., 1] + 0.114 * a[..., 0]


def write_dicom(path: Path, pixels: np.ndarray | None, photometric: str = "MONOCHROME2",
                transfer_syntax=ExplicitVRLittleEndian, pixel_data: bytes | None = None,
                **elements) -> Path:
    """A minimal secondary-capture DICOM; ``pixels`` (frames,) rows x cols [x 3] or None.

    ``pixel_data`` replaces the stored bytes (e.g. an encapsulated compressed stream).
    """
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SECONDARY_CAPTURE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = transfer_syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "OT"
    if pixels is not None:
        colour = photometric == "RGB"
        ds.SamplesPerPixel = 3 if colour else 1
        if colour:
            ds.PlanarConfiguration = 0
        frame_shape = pixels.shape[-3:-1] if colour else pixels.shape[-2:]
        if pixels.ndim == (4 if colour else 3):
            ds.NumberOfFrames = pixels.shape[0]
        ds.Rows, ds.Columns = frame_shape
        ds.PhotometricInterpretation = photometric
        bits = pixels.dtype.itemsize * 8
        ds.BitsAllocated = bits
        ds.BitsStored = bits
        ds.HighBit = bits - 1
        ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
        ds.PixelData = np.ascontiguousarray(pixels).tobytes() if pixel_data is None else pixel_data
        if pixel_data is not None:
            ds["PixelData"].VR = "OB"
    for key, value in elements.items():
        setattr(ds, key, value)
    ds.save_as(path, enforce_file_format=True)
    return path


def tiff_bytes(arr: np.ndarray, order: str) -> bytes:
    """Uncompressed one-strip TIFF with the directory *before* the pixel data.

    OpenCV writes the directory at the end; this layout (and big-endian 'MM') is
    what other scanners and converters write, so the truncation check must handle it.
    """
    rows, cols = arr.shape
    bits = arr.dtype.itemsize * 8
    data = arr.astype(arr.dtype.newbyteorder(order)).tobytes()
    entries = [(256, 3, cols), (257, 3, rows), (258, 3, bits), (259, 3, 1), (262, 3, 1),
               (273, 4, 0), (277, 3, 1), (278, 3, rows), (279, 4, len(data))]
    ifd_len = 2 + 12 * len(entries) + 4
    data_offset = 8 + ifd_len
    out = (b"II*\x00" if order == "<" else b"MM\x00*") + struct.pack(order + "I", 8)
    out += struct.pack(order + "H", len(entries))
    for tag, typ, value in entries:
        value = data_offset if tag == 273 else value
        packed = struct.pack(order + "HH", value, 0) if typ == 3 else struct.pack(order + "I", value)
        out += struct.pack(order + "HHI", tag, typ, 1) + packed
    out += struct.pack(order + "I", 0)
    return out + data


def truncated_copy(src: Path, dst: Path, fraction: float = 0.5) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


# --------------------------------------------------------------------------- bad input table


def _missing(tmp_path, monkeypatch, real):
    return tmp_path / "no_such_slice.png"


def _folder(tmp_path, monkeypatch, real):
    d = tmp_path / "slices.png"
    d.mkdir()
    return d


def _empty(tmp_path, monkeypatch, real):
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    return p


def _text_as_png(tmp_path, monkeypatch, real):
    p = tmp_path / "notes.png"
    p.write_text("patient 12, upper incisor, re-scan next week\n" * 20, encoding="utf-8")
    return p


def _random_dcm(tmp_path, monkeypatch, real):
    p = tmp_path / "random.dcm"
    p.write_bytes(np.random.default_rng(RNG_SEED).bytes(4000))
    return p


def _truncated_png(tmp_path, monkeypatch, real):
    return truncated_copy(write_cv2(tmp_path / "ok.png", gray16((120, 130))), tmp_path / "cut.png")


def _truncated_jpeg(tmp_path, monkeypatch, real):
    return truncated_copy(write_cv2(tmp_path / "ok.jpg", bgr8((120, 130))), tmp_path / "cut.jpg")


def _truncated_tiff(tmp_path, monkeypatch, real):
    return truncated_copy(write_cv2(tmp_path / "ok.tif", gray16((120, 130))), tmp_path / "cut.tif")


def _truncated_tiff_strip(tmp_path, monkeypatch, real):
    p = tmp_path / "cut_strip.tif"
    p.write_bytes(tiff_bytes(gray16((120, 130)), "<")[:-100])  # directory intact, pixels cut
    return p


def _truncated_bmp(tmp_path, monkeypatch, real):
    return truncated_copy(write_cv2(tmp_path / "ok.bmp", bgr8((120, 130))), tmp_path / "cut.bmp")


def _truncated_dicom(tmp_path, monkeypatch, real):
    return truncated_copy(real / "dicom" / "CT_small.dcm", tmp_path / "cut.dcm", 0.6)


def _dicom_without_pixels(tmp_path, monkeypatch, real):
    return write_dicom(tmp_path / "header_only.dcm", None, PixelSpacing=[0.2, 0.2])


def _dicom_zero_frames(tmp_path, monkeypatch, real):
    p = write_dicom(tmp_path / "volume.dcm", np.zeros((2, 20, 20), np.uint16))
    ds = pydicom.dcmread(p)
    ds.NumberOfFrames = 0
    ds.save_as(p)
    return p


def _dicom_jpeg_baseline_no_decoder(tmp_path, monkeypatch, real):
    if get_decoder(JPEGBaseline8Bit).is_available:
        pytest.skip("a JPEG baseline DICOM decoder is installed here")
    return write_dicom(tmp_path / "jpeg.dcm", np.zeros((20, 20), np.uint8), transfer_syntax=JPEGBaseline8Bit,
                       pixel_data=encapsulate([b"\xff\xd8\xff\xd9"]))


def _dicom_jpeg2000_real(tmp_path, monkeypatch, real):
    return real / "dicom" / "JPEG2000.dcm"


def _too_small(tmp_path, monkeypatch, real):
    return write_cv2(tmp_path / "icon.png", gray8((8, 12)))


def _over_pixel_limit(tmp_path, monkeypatch, real):
    monkeypatch.setattr(image_io, "MAX_PIXELS", 1000)
    return write_cv2(tmp_path / "big.png", gray8((40, 48)))


def _over_pixel_limit_dicom(tmp_path, monkeypatch, real):
    monkeypatch.setattr(image_io, "MAX_PIXELS", 1000)
    return real / "dicom" / "CT_small.dcm"


def _over_byte_limit(tmp_path, monkeypatch, real):
    monkeypatch.setattr(image_io, "MAX_FILE_BYTES", 500)
    return write_cv2(tmp_path / "big.png", gray16((40, 48)))


BAD_INPUTS = [
    pytest.param(_missing, "does not exist", id="missing_file"),
    pytest.param(_folder, "is a folder", id="folder"),
    pytest.param(_empty, "empty (0 bytes)", id="empty_file"),
    pytest.param(_text_as_png, "not a supported image", id="text_renamed_png"),
    pytest.param(_random_dcm, "not a readable DICOM file", id="random_bytes_dcm"),
    pytest.param(_truncated_png, "PNG file is truncated", id="truncated_png"),
    pytest.param(_truncated_jpeg, "JPEG file is truncated", id="truncated_jpeg"),
    pytest.param(_truncated_tiff, "TIFF file is truncated", id="truncated_tiff_dir_at_end"),
    pytest.param(_truncated_tiff_strip, "TIFF file is truncated", id="truncated_tiff_pixels"),
    pytest.param(_truncated_bmp, "BMP file is truncated", id="truncated_bmp"),
    pytest.param(_truncated_dicom, "pixel data is damaged or incomplete", id="truncated_dicom"),
    pytest.param(_dicom_without_pixels, "contains no pixel data", id="dicom_without_pixeldata"),
    pytest.param(_dicom_zero_frames, "volume without a usable slice", id="dicom_zero_frames"),
    pytest.param(_dicom_jpeg_baseline_no_decoder, "no decoder for it is installed", id="dicom_jpeg_no_decoder"),
    pytest.param(_dicom_jpeg2000_real, "JPEG 2000 compression", id="dicom_jpeg2000_real",
                 marks=pytest.mark.skipif(J2K_DECODER_AVAILABLE, reason="a JPEG 2000 decoder is installed")),
    pytest.param(_too_small, "too small to be a CBCT slice", id="too_small"),
    pytest.param(_over_pixel_limit, "megapixel limit", id="over_pixel_limit"),
    pytest.param(_over_pixel_limit_dicom, "megapixel limit", id="over_pixel_limit_dicom"),
    pytest.param(_over_byte_limit, "over the 500 bytes limit", id="over_file_size_limit"),
]


@pytest.mark.parametrize("build, phrase", BAD_INPUTS)
def test_bad_input_gives_clear_error(build, phrase, tmp_path, monkeypatch, real_data):
    path = build(tmp_path, monkeypatch, real_data)
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    message = str(info.value)
    assert phrase in message
    assert str(path) in message  # names the file
    assert message.rstrip().endswith(".") and ". " in message  # problem, then what to do


def test_text_file_error_lists_the_supported_formats(tmp_path, real_data):
    with pytest.raises(ImageLoadError, match="Supported: PNG, JPEG, TIFF, BMP"):
        load_image(_text_as_png(tmp_path, None, real_data))


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif", ".bmp"])
def test_pixel_limit_is_checked_from_the_header_before_decoding(suffix, tmp_path, monkeypatch):
    path = write_cv2(tmp_path / f"big{suffix}", gray8((60, 70)))
    monkeypatch.setattr(image_io, "MAX_PIXELS", 60 * 70 - 1)

    def must_not_decode(*args, **kwargs):
        raise AssertionError("decoded before the size check")

    monkeypatch.setattr(image_io.cv2, "imdecode", must_not_decode)
    with pytest.raises(ImageLoadError, match="70 x 60 pixels"):
        load_image(path)


def test_bad_spacing_argument_is_a_dentseg_error(tmp_path):
    path = write_cv2(tmp_path / "a.png", gray8())
    for bad in [(0.0, 0.1), (-0.1, 0.1), (0.1,), ("x", 1), (float("nan"), 0.1)]:
        with pytest.raises(DentsegError, match="two positive numbers"):
            load_image(path, spacing=bad)


def test_damaged_files_never_leak_raw_exceptions(tmp_path, real_data):
    """Cut and byte-flipped copies of every format: each loads or raises ImageLoadError."""
    rng = np.random.default_rng(RNG_SEED)
    sources = [
        write_cv2(tmp_path / "s.png", gray16((50, 60))),
        write_cv2(tmp_path / "s.jpg", bgr8((50, 60))),
        write_cv2(tmp_path / "s.tif", gray16((50, 60))),
        write_cv2(tmp_path / "s.bmp", bgr8((50, 60))),
        real_data / "dicom" / "MR_small.dcm",
        real_data / "dicom" / "MR_small_RLE.dcm",
    ]
    outcomes = {"loaded": 0, "error": 0}
    for src in sources:
        data = src.read_bytes()
        for k in range(8):
            damaged = bytearray(data[: int(len(data) * (k + 1) / 9)] if k % 2 else data)
            for pos in rng.integers(0, len(damaged), size=6):
                damaged[pos] = int(rng.integers(0, 256))
            path = tmp_path / f"damaged_{k}{src.suffix}"
            path.write_bytes(bytes(damaged))
            try:
                image = load_image(path)
            except ImageLoadError as e:
                assert str(path) in str(e)
                outcomes["error"] += 1
            else:
                assert image.pixels.dtype == np.float32 and image.pixels.ndim == 2
                outcomes["loaded"] += 1
    assert outcomes["error"] >= 20  # every cut copy (4 per source) is refused


# --------------------------------------------------------------------------- raster round trips


@pytest.mark.parametrize("suffix, kind", [(".png", "png"), (".tif", "tiff")])
@pytest.mark.parametrize("make, bits", [(gray8, 8), (gray16, 16)])
def test_gray_round_trip_is_exact(suffix, kind, make, bits, tmp_path):
    arr = make()
    image = load_image(write_cv2(tmp_path / f"g{suffix}", arr))
    assert image.pixels.dtype == np.float32 and image.pixels.shape == arr.shape
    np.testing.assert_array_equal(image.pixels, arr.astype(np.float32))
    assert (image.kind, image.bit_depth) == (kind, bits)
    assert image.spacing_mm is None and "spacing" in image.meta["spacing_note"]


def test_16bit_values_above_255_are_preserved(tmp_path):
    arr = np.arange(1000, 1000 + 32 * 40, dtype=np.uint16).reshape(32, 40) * 40
    image = load_image(write_cv2(tmp_path / "high.png", arr))
    assert image.pixels.max() > 50_000
    np.testing.assert_array_equal(image.pixels, arr.astype(np.float32))


@pytest.mark.parametrize("suffix", [".bmp", ".png"])
def test_colour_lossless_becomes_luminance(suffix, tmp_path):
    arr = bgr8()
    image = load_image(write_cv2(tmp_path / f"c{suffix}", arr))
    np.testing.assert_allclose(image.pixels, luminance_bgr(arr), rtol=0, atol=1e-4)
    assert image.meta["channels"] == 3 and image.bit_depth == 8


def test_colour_16bit_keeps_precision_and_drops_alpha(tmp_path):
    rng = np.random.default_rng(RNG_SEED)
    arr = rng.integers(0, 65536, size=(30, 40, 4), dtype=np.uint16)
    image = load_image(write_cv2(tmp_path / "bgra16.png", arr))
    np.testing.assert_allclose(image.pixels, luminance_bgr(arr[..., :3]), rtol=1e-6)
    assert image.bit_depth == 16 and "alpha" in image.meta["colour_note"]
    assert len(np.unique(image.pixels)) > 1000  # not squashed to 256 levels


def test_colour_jpeg_becomes_luminance_of_the_decoded_colours(tmp_path):
    yy, xx = np.mgrid[0:64, 0:80]
    arr = np.dstack([xx * 3, yy * 3, (xx + yy) * 1.5]).astype(np.uint8)  # smooth: small JPEG error
    path = write_cv2(tmp_path / "c.jpg", arr)
    image = load_image(path)
    decoded = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    np.testing.assert_allclose(image.pixels, luminance_bgr(decoded), atol=1e-3)
    assert np.abs(image.pixels - luminance_bgr(arr)).mean() < 3.0
    assert image.kind == "jpeg"


def test_gray_stored_as_colour_is_taken_unchanged(tmp_path):
    g = gray8()
    image = load_image(write_cv2(tmp_path / "grey_rgb.bmp", np.dstack([g, g, g])))
    np.testing.assert_array_equal(image.pixels, g.astype(np.float32))


def test_float_tiff_keeps_values(tmp_path):
    arr = (np.random.default_rng(RNG_SEED).random((30, 40), dtype=np.float32) * 3000 - 1000)
    image = load_image(write_cv2(tmp_path / "f.tif", arr))
    np.testing.assert_array_equal(image.pixels, arr)
    assert image.pixels.min() < 0 and image.bit_depth == 32


def test_multipage_tiff_loads_first_page_and_says_so(tmp_path):
    first, second = gray16(), gray16()[::-1].copy()
    ok, enc = cv2.imencodemulti(".tif", [first, second])
    assert ok
    path = tmp_path / "pages.tif"
    enc.tofile(str(path))
    image = load_image(path)
    np.testing.assert_array_equal(image.pixels, first.astype(np.float32))
    assert image.meta["pages"] == 2 and "first page" in image.meta["page_note"]


@pytest.mark.parametrize("order", ["<", ">"], ids=["little_endian_II", "big_endian_MM"])
def test_handwritten_tiff_both_byte_orders(order, tmp_path):
    arr = gray16((33, 47))
    path = tmp_path / "scanner.tif"
    path.write_bytes(tiff_bytes(arr, order))
    np.testing.assert_array_equal(load_image(path).pixels, arr.astype(np.float32))


def test_spacing_argument_is_used_for_png(tmp_path):
    image = load_image(write_cv2(tmp_path / "a.png", gray8()), spacing=(0.1, 0.125))
    assert image.spacing_mm == (0.1, 0.125) and image.meta["spacing_source"] == "argument"


def test_format_comes_from_content_and_non_ascii_paths_work(tmp_path):
    arr = gray16()
    folder = tmp_path / "Zähne_歯"
    folder.mkdir()
    png_named_dat = folder / "schnitt_ß.dat"
    png_named_dat.write_bytes(write_cv2(tmp_path / "x.png", arr).read_bytes())
    np.testing.assert_array_equal(load_image(png_named_dat).pixels, arr.astype(np.float32))
    assert is_supported(png_named_dat)


def test_supported_suffixes_and_is_supported(tmp_path, real_data):
    assert all(s == s.lower() for s in SUPPORTED_SUFFIXES)
    assert {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".dcm", ""} <= set(SUPPORTED_SUFFIXES)
    no_suffix = tmp_path / "IM000123"
    no_suffix.write_bytes((real_data / "dicom" / "MR_small.dcm").read_bytes())
    notes = tmp_path / "notes"
    notes.write_text("not an image")
    assert is_supported(no_suffix) and not is_supported(notes)
    assert is_supported(tmp_path / "later.TIFF")  # by suffix, need not exist yet
    assert not is_supported(tmp_path / "readme.txt")
    assert load_image(no_suffix).kind == "dicom"


# --------------------------------------------------------------------------- DICOM


def test_dicom_monochrome1_is_inverted_so_bright_is_dense(tmp_path):
    stored = np.array([[0, 100], [400, 1000]], np.uint16).repeat(10, 0).repeat(10, 1)
    path = write_dicom(tmp_path / "m1.dcm", stored, photometric="MONOCHROME1",
                       WindowCenter=300, WindowWidth=600)
    image = load_image(path)
    np.testing.assert_array_equal(image.pixels, (1000 - stored).astype(np.float32))
    assert image.meta["window_center"] == 700.0 and image.meta["window_width"] == 600.0
    assert "MONOCHROME1" in image.meta["photometric_note"]


def test_dicom_rescale_slope_and_intercept_are_applied(tmp_path):
    stored = np.arange(-200, 200, dtype=np.int16).reshape(20, 20)
    path = write_dicom(tmp_path / "ct.dcm", stored, RescaleSlope=2.5, RescaleIntercept=-1000)
    image = load_image(path)
    np.testing.assert_allclose(image.pixels, stored * 2.5 - 1000)
    assert image.meta["rescale_slope"] == 2.5 and image.meta["rescale_intercept"] == -1000.0
    assert image.bit_depth == 16


def test_dicom_anisotropic_spacing_keeps_row_column_order_and_beats_argument(tmp_path):
    path = write_dicom(tmp_path / "aniso.dcm", np.zeros((20, 30), np.uint16), PixelSpacing=[0.2, 0.3])
    image = load_image(path, spacing=(0.9, 0.9))
    assert image.spacing_mm == (0.2, 0.3)
    assert image.meta["spacing_source"] == "PixelSpacing" and "ignored" in image.meta["spacing_note"]


def test_dicom_spacing_fallbacks(tmp_path):
    pixels = np.zeros((20, 20), np.uint16)
    imager = load_image(write_dicom(tmp_path / "dx.dcm", pixels, ImagerPixelSpacing=[0.14, 0.15]))
    assert imager.spacing_mm == (0.14, 0.15) and "ImagerPixelSpacing" in imager.meta["spacing_note"]
    bare = write_dicom(tmp_path / "bare.dcm", pixels)
    none = load_image(bare)
    assert none.spacing_mm is None and none.meta["spacing_source"] is None
    assert "no usable" in none.meta["spacing_note"]
    given = load_image(bare, spacing=(0.3, 0.3))
    assert given.spacing_mm == (0.3, 0.3) and given.meta["spacing_source"] == "argument"


def test_dicom_multiframe_loads_middle_frame(tmp_path):
    frames = np.stack([np.full((20, 24), v, np.uint16) for v in (10, 20, 30)])
    image = load_image(write_dicom(tmp_path / "mf.dcm", frames))
    np.testing.assert_array_equal(image.pixels, np.full((20, 24), 20, np.float32))
    assert image.meta["frame_index"] == 1 and "middle frame" in image.meta["frame_note"]


def test_dicom_rgb_becomes_luminance_in_rgb_order(tmp_path):
    rgb = bgr8()[..., ::-1].copy()  # same colours as bgr8(), stored R, G, B
    image = load_image(write_dicom(tmp_path / "rgb.dcm", rgb, photometric="RGB"))
    np.testing.assert_allclose(image.pixels, luminance_bgr(bgr8()), atol=1e-4)


def test_real_ct_small_hounsfield_and_spacing(real_data):
    path = real_data / "dicom" / "CT_small.dcm"
    ds = pydicom.dcmread(path)
    expected = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    image = load_image(path)
    np.testing.assert_array_equal(image.pixels, expected.astype(np.float32))
    assert image.spacing_mm == pytest.approx((0.661468, 0.661468))
    assert -1000 < image.pixels.min() < -800  # air-like, so the -1024 intercept was applied
    assert image.pixels.max() > 500
    assert (image.kind, image.meta["modality"]) == ("dicom", "CT")
    assert image.meta["transfer_syntax"] == "Explicit VR Little Endian"


def test_real_mr_small_variants_have_identical_pixels(real_data):
    folder = real_data / "dicom"
    reference = load_image(folder / "MR_small.dcm")
    assert reference.spacing_mm == pytest.approx((0.3125, 0.3125)) and reference.pixels.shape == (64, 64)
    assert reference.meta["window_center"] == 600.0 and reference.meta["window_width"] == 1600.0
    variants = [("MR_small_RLE.dcm", "RLE Lossless"), ("MR_small_bigendian.dcm", "Explicit VR Big Endian")]
    for name, syntax in variants:
        image = load_image(folder / name)
        np.testing.assert_array_equal(image.pixels, reference.pixels)
        assert image.spacing_mm == reference.spacing_mm and image.meta["transfer_syntax"] == syntax


def test_real_jpeg2000_dicom_loads_or_says_how_to_fix(real_data):
    path = real_data / "dicom" / "JPEG2000.dcm"
    try:
        image = load_image(path)
    except ImageLoadError as e:
        message = str(e)
        assert not J2K_DECODER_AVAILABLE
        assert "JPEG 2000 compression" in message and "no JPEG 2000 decoder is installed" in message
        assert "pylibjpeg pylibjpeg-openjpeg" in message and "uncompressed" in message
    else:
        assert J2K_DECODER_AVAILABLE
        assert image.pixels.shape == (1024, 256) and image.spacing_mm == pytest.approx((2.26, 2.26))


def test_real_cephalogram_loads_full_size(real_data):
    path = real_data / "cephalogram" / "B1893L12.jpg"
    image = load_image(path)
    assert image.pixels.shape == (5120, 4096) and image.pixels.dtype == np.float32
    assert (image.kind, image.bit_depth, image.spacing_mm) == ("jpeg", 8, None)
    reference = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(image.pixels[::64, ::64], reference[::64, ::64].astype(np.float32))
    assert 0 <= image.pixels.min() < image.pixels.max() <= 255
