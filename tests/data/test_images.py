"""Tests for app.data.images: every fixture is generated in tmp_path at test time."""

import io
import os

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile, ImageOps

from app.data import images
from app.data.images import ImageLoadError, image_to_float, load_image, resize_image, save_image

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def marked_picture(width=40, height=20):
    """(H, W, 3) uint8: green everywhere, a red block in the top-left corner."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:] = GREEN
    pixels[:6, :6] = RED
    return pixels


def exif_with_orientation(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


# --- orientation ---------------------------------------------------------------------------------


def test_exif_orientation_6_is_rotated_clockwise(tmp_path):
    path = tmp_path / "phone.jpg"
    Image.fromarray(marked_picture()).save(path, quality=95, exif=exif_with_orientation(6))

    loaded = load_image(path)

    # stored 40 wide x 20 high; orientation 6 means "turn 90 degrees clockwise to view"
    assert loaded.pixels.shape == (40, 20, 3)
    assert loaded.source_size == (20, 40)
    top_right = loaded.pixels[1, -2].astype(int)
    top_left = loaded.pixels[1, 1].astype(int)
    assert top_right[0] > 200 and top_right[1] < 60  # the red corner moved to the top right
    assert top_left[1] > 200 and top_left[0] < 60  # green elsewhere
    assert any("EXIF orientation" in note for note in loaded.notes)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillow(tmp_path, orientation):
    path = tmp_path / f"oriented{orientation}.png"
    Image.fromarray(marked_picture()).save(path, exif=exif_with_orientation(orientation))

    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    loaded = load_image(path)

    np.testing.assert_array_equal(loaded.pixels, expected)
    assert loaded.source_size == (expected.shape[1], expected.shape[0])


# --- transparency, bit depth, colour modes -------------------------------------------------------


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 0)  # fully transparent red
    rgba[0, 1] = (0, 0, 255, 255)  # opaque blue
    rgba[0, 2] = (0, 0, 0, 128)  # half-transparent black
    rgba[1] = (10, 20, 30, 255)
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba, "RGBA").save(path)

    loaded = load_image(path)

    assert loaded.pixels.dtype == np.uint8 and loaded.pixels.shape == (2, 3, 3)
    assert tuple(loaded.pixels[0, 0]) == WHITE
    assert tuple(loaded.pixels[0, 1]) == BLUE
    assert tuple(loaded.pixels[0, 2]) == (127, 127, 127)
    assert tuple(loaded.pixels[1, 0]) == (10, 20, 30)
    assert "Transparent areas were composited on white." in loaded.notes


def test_opaque_alpha_channel_needs_no_compositing(tmp_path):
    rgba = np.full((4, 4, 4), 255, np.uint8)
    rgba[..., :3] = (1, 2, 3)
    path = tmp_path / "opaque.png"
    Image.fromarray(rgba, "RGBA").save(path)

    loaded = load_image(path)

    assert np.all(loaded.pixels == (1, 2, 3))
    assert loaded.notes == []


def test_gray_with_alpha(tmp_path):
    gray_alpha = np.array([[[200, 255], [0, 0]]], np.uint8)  # (1, 2, 2)
    path = tmp_path / "la.png"
    Image.fromarray(gray_alpha, "LA").save(path)

    pixels = load_image(path).pixels

    assert tuple(pixels[0, 0]) == (200, 200, 200)
    assert tuple(pixels[0, 1]) == WHITE


def test_palette_with_transparency(tmp_path):
    palette_image = Image.new("P", (4, 2))
    palette_image.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)  # index 0 black, index 1 green
    palette_image.putdata([0, 1, 1, 0, 1, 1, 1, 1])
    for name in ("palette.png", "palette.gif"):
        path = tmp_path / name
        palette_image.save(path, transparency=0)

        loaded = load_image(path)

        assert tuple(loaded.pixels[0, 0]) == WHITE  # transparent index
        assert tuple(loaded.pixels[0, 1]) == GREEN
        assert "Transparent areas were composited on white." in loaded.notes


def test_palette_without_transparency(tmp_path):
    path = tmp_path / "palette.bmp"
    Image.fromarray(marked_picture()).convert("P", palette=Image.Palette.ADAPTIVE, colors=4).save(path)

    pixels = load_image(path).pixels

    assert tuple(pixels[0, 0]) == RED and tuple(pixels[-1, -1]) == GREEN


def test_16_bit_grayscale_png(tmp_path):
    values = np.array([[0, 65535, 32896, 257]], np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)  # uint16 -> mode I;16

    loaded = load_image(path)

    assert loaded.pixels.shape == (1, 4, 3)
    np.testing.assert_array_equal(loaded.pixels[0, :, 0], [0, 255, 128, 1])
    assert np.all(loaded.pixels[..., 0] == loaded.pixels[..., 2])
    assert "Converted from 16-bit to 8-bit." in loaded.notes


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_colour(tmp_path, suffix):
    rgb = np.zeros((2, 2, 3), np.uint16)
    rgb[0, 0] = (65535, 0, 0)
    rgb[0, 1] = (0, 32768, 0)
    rgb[1, :] = (0, 0, 65535)
    path = tmp_path / f"deep{suffix}"
    assert cv2.imwrite(str(path), rgb[..., ::-1])  # OpenCV writes BGR

    loaded = load_image(path)

    assert tuple(loaded.pixels[0, 0]) == RED
    assert tuple(loaded.pixels[0, 1]) == (0, 128, 0)
    assert tuple(loaded.pixels[1, 1]) == BLUE
    assert "Converted from 16-bit to 8-bit." in loaded.notes


def test_grayscale_becomes_three_equal_channels(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    path = tmp_path / "gray.png"
    Image.fromarray(gray, "L").save(path)

    loaded = load_image(path)

    assert loaded.pixels.shape == (3, 4, 3)
    for channel in range(3):
        np.testing.assert_array_equal(loaded.pixels[..., channel], gray)
    assert "Converted from grayscale to RGB." in loaded.notes


def test_one_bit_image(tmp_path):
    bits = Image.new("1", (3, 1))
    bits.putpixel((1, 0), 1)
    path = tmp_path / "bits.png"
    bits.save(path)

    pixels = load_image(path).pixels

    assert [tuple(p) for p in pixels[0]] == [(0, 0, 0), WHITE, (0, 0, 0)]


def test_float_and_32_bit_integer_tiffs(tmp_path):
    float_path = tmp_path / "float.tif"
    Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32), "F").save(float_path)
    int_path = tmp_path / "int.tif"
    Image.fromarray(np.array([[0, 1000, 4000]], np.int32), "I").save(int_path)

    float_loaded = load_image(float_path)
    int_loaded = load_image(int_path)

    np.testing.assert_array_equal(float_loaded.pixels[0, :, 1], [0, 128, 255])
    assert any("floating point" in note for note in float_loaded.notes)
    # 0..4000 fits 16 bits: scaled as 16-bit data, not stretched
    np.testing.assert_array_equal(int_loaded.pixels[0, :, 0], np.rint(np.array([0, 1000, 4000]) / 257))


def test_opencv_reads_what_pillow_cannot(tmp_path):
    radiance = np.zeros((4, 6, 3), np.float32)  # BGR, as OpenCV writes it
    radiance[..., 2] = 0.5
    radiance[0, 0] = (1.0, 0.0, 0.0)
    path = tmp_path / "light.hdr"  # Radiance HDR: Pillow has no decoder for it
    assert cv2.imwrite(str(path), radiance)

    pixels = load_image(path).pixels

    assert tuple(pixels[0, 0]) == BLUE
    assert tuple(pixels[1, 1]) == (128, 0, 0)


def test_cmyk_jpeg(tmp_path):
    path = tmp_path / "print.jpg"
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(path, quality=95)  # pure red ink mix
    assert Image.open(path).mode == "CMYK"

    loaded = load_image(path)

    red, green, blue = loaded.pixels[4, 4].astype(int)
    assert red > 230 and green < 30 and blue < 30
    assert "Converted from CMYK to RGB." in loaded.notes


# --- size ----------------------------------------------------------------------------------------


def test_huge_image_is_downscaled_with_area_averaging(tmp_path):
    wide = np.zeros((300, 9000, 3), np.uint8)
    wide[:, 4500:] = 255  # left half black, right half white
    path = tmp_path / "panorama.png"
    Image.fromarray(wide).save(path, compress_level=1)

    loaded = load_image(path, max_side=100)

    assert loaded.pixels.shape == (3, 100, 3)
    assert loaded.source_size == (9000, 300)
    assert np.all(loaded.pixels[:, :49] == 0) and np.all(loaded.pixels[:, 51:] == 255)
    assert "Downscaled from 9000x300 to 100x3 to fit 100 pixels." in loaded.notes


def test_small_image_is_not_resized(tmp_path):
    path = tmp_path / "small.png"
    Image.fromarray(marked_picture()).save(path)

    loaded = load_image(path, max_side=40)

    assert loaded.pixels.shape == (20, 40, 3) and loaded.notes == []


def test_huge_jpeg_is_decoded_at_reduced_size(tmp_path, monkeypatch):
    photo = np.zeros((2000, 4000, 3), np.uint8)
    photo[:, :2000] = RED
    jpeg_path, png_path = tmp_path / "big.jpg", tmp_path / "big.png"
    Image.fromarray(photo).save(jpeg_path, quality=90)
    Image.fromarray(photo).save(png_path, compress_level=1)
    monkeypatch.setattr(images, "MAX_DECODED_PIXELS", 1_000_000)  # 8 MP would be refused

    loaded = load_image(jpeg_path, max_side=500)  # JPEG draft decodes at 1/8: 500x250

    assert loaded.pixels.shape == (250, 500, 3)
    assert loaded.source_size == (4000, 2000)
    assert loaded.pixels[100, 100, 0] > 240 and loaded.pixels[100, 400, 0] < 15
    with pytest.raises(ImageLoadError, match="too large"):
        load_image(png_path, max_side=500)  # a PNG cannot be decoded at reduced size


def test_decompression_bomb_guard_becomes_image_load_error(tmp_path, monkeypatch):
    path = tmp_path / "bomb.png"
    Image.new("RGB", (100, 100)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow refuses over 2000 pixels

    with pytest.raises(ImageLoadError, match="too many pixels"):
        load_image(path)


def test_pillow_limit_is_raised_to_ours():
    assert Image.MAX_IMAGE_PIXELS is None or Image.MAX_IMAGE_PIXELS >= images.MAX_DECODED_PIXELS


def test_max_side_must_be_positive(tmp_path):
    with pytest.raises(ValueError):
        load_image(tmp_path / "whatever.png", max_side=0)


# --- bad files -----------------------------------------------------------------------------------


@pytest.mark.parametrize("keep_fraction", [0.1, 0.5, 0.9, 0.99])
def test_truncated_jpeg_is_an_error_not_a_grey_picture(tmp_path, monkeypatch, keep_fraction):
    encoded = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(encoded, "JPEG")
    data = encoded.getvalue()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: int(len(data) * keep_fraction)])
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # someone else's global setting

    with pytest.raises(ImageLoadError, match=r"^Could not read '.*cut\.jpg': the file is truncated or corrupt\.$"):
        load_image(path)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored


@pytest.mark.parametrize("lenient_global_setting", [False, True])
def test_truncated_png(tmp_path, monkeypatch, lenient_global_setting):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", lenient_global_setting)
    encoded = io.BytesIO()
    Image.fromarray(marked_picture(200, 100)).save(encoded, "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(encoded.getvalue()[:-40])

    with pytest.raises(ImageLoadError, match="truncated or corrupt"):
        load_image(path)


def test_png_signature_with_garbage_is_corrupt(tmp_path):
    path = tmp_path / "fake.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)

    with pytest.raises(ImageLoadError, match="truncated or corrupt"):
        load_image(path)


def test_empty_file(tmp_path):
    path = tmp_path / "x.jpg"
    path.write_bytes(b"")

    with pytest.raises(ImageLoadError, match=r"^Could not read '.*x\.jpg': the file is empty\.$"):
        load_image(path)


@pytest.mark.parametrize("name", ["notes.txt", "disguised.png"])
def test_text_file_is_not_an_image(tmp_path, name):
    path = tmp_path / name
    path.write_text("This is not a picture.\n" * 10)

    with pytest.raises(ImageLoadError, match="it is not an image file"):
        load_image(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageLoadError, match="does not exist"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ImageLoadError, match="is a folder"):
        load_image(tmp_path)


def test_image_load_error_is_a_value_error():
    assert issubclass(ImageLoadError, ValueError)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=1, max_size=400), position=st.integers(0, 10_000))
def test_damaged_files_only_raise_image_load_error(tmp_path, data, position):
    """Random bytes, alone or spliced into a valid PNG, load or raise ImageLoadError, nothing else."""
    encoded = io.BytesIO()
    Image.fromarray(marked_picture()).save(encoded, "PNG")
    valid = encoded.getvalue()
    position = position % len(valid)
    for content in (data, valid[:position] + data + valid[position + len(data):]):
        path = tmp_path / "damaged.png"
        path.write_bytes(content)
        try:
            loaded = load_image(path)
        except ImageLoadError:
            continue
        assert loaded.pixels.dtype == np.uint8 and loaded.pixels.ndim == 3


# --- non-ASCII names and saving ------------------------------------------------------------------


def test_non_ascii_path_roundtrip(tmp_path):
    path = tmp_path / "föto_写真.png"
    pixels = marked_picture()

    save_image(path, pixels)
    loaded = load_image(path)

    np.testing.assert_array_equal(loaded.pixels, pixels)


def test_save_image_replaces_atomically_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "out" / "frame.png"
    save_image(path, np.zeros((4, 4, 3), np.uint8))
    save_image(path, np.full((4, 4, 3), 7, np.uint8))  # overwrite

    assert np.all(load_image(path).pixels == 7)
    assert os.listdir(path.parent) == ["frame.png"]


def test_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "keep.jpg"
    save_image(path, np.full((8, 8, 3), 200, np.uint8))

    def broken_save(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(ValueError, match="Cannot write .*keep.jpg.*disk full"):  # app.atomic.WriteError
        save_image(path, np.zeros((8, 8, 3), np.uint8))
    monkeypatch.undo()

    assert abs(int(load_image(path).pixels.mean()) - 200) <= 2
    assert os.listdir(tmp_path) == ["keep.jpg"]


def test_save_image_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError):
        save_image(tmp_path / "a.png", np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="unknown image file extension"):
        save_image(tmp_path / "a.xyz", np.zeros((4, 4, 3), np.uint8))


# --- helpers -------------------------------------------------------------------------------------


def test_image_to_float():
    pixels = np.array([[[0, 128, 255]]], np.uint8)

    as_float = image_to_float(pixels)

    assert as_float.dtype == np.float32 and as_float.shape == (1, 1, 3)
    np.testing.assert_allclose(as_float[0, 0], [0.0, 128 / 255, 1.0])
    with pytest.raises(ValueError):
        image_to_float(as_float)


def test_resize_image_area_when_shrinking_and_cubic_when_enlarging():
    checkerboard = np.zeros((4, 4, 3), np.uint8)
    checkerboard[::2, ::2] = 255
    checkerboard[1::2, 1::2] = 255

    shrunk = resize_image(checkerboard, (2, 2))
    enlarged = resize_image(checkerboard, (8, 6))

    assert shrunk.shape == (2, 2, 3) and np.all(np.abs(shrunk.astype(int) - 128) <= 1)  # averaged
    assert enlarged.shape == (6, 8, 3) and enlarged.dtype == np.uint8
    with pytest.raises(ValueError):
        resize_image(checkerboard, (0, 3))
