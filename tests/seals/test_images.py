"""Seal images: generated PNG / SVG stamps and the checks on uploaded images."""

from __future__ import annotations

import io
import itertools
import logging
import math
import struct
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFont, PngImagePlugin

from sealkeeper.errors import ConfigurationError, InvalidInput
from sealkeeper.seals import images
from sealkeeper.seals.images import (
    SEAL_LABELS,
    SEAL_TYPES,
    render_png,
    render_svg,
    seal_label,
    validate_uploaded_image,
)

SVG_NS = "{http://www.w3.org/2000/svg}"
ROUND = ["official", "authorized_signature", "contract", "employment_agreement"]
OVAL = ["financial", "invoice"]
CJK_FONT_PATHS = [
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
]
DEJAVU = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


def _cjk_font_path() -> str:
    for path in CJK_FONT_PATHS:
        if Path(path).is_file():
            return path
    pytest.skip("no CJK font installed (apt-get install fonts-wqy-microhei)")


def _open(png: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(png))
    im.load()
    return im


def _red_pixels(im: Image.Image) -> int:
    raw = im.tobytes()
    return sum(
        1
        for i in range(0, len(raw), 4)
        if raw[i + 3] > 128 and raw[i] > 150 and raw[i + 1] < 100 and raw[i + 2] < 100
    )


def _corners_transparent(im: Image.Image, box: int) -> bool:
    w, h = im.size
    alpha = im.getchannel("A")
    for x0, y0 in [(0, 0), (w - box, 0), (0, h - box), (w - box, h - box)]:
        if alpha.crop((x0, y0, x0 + box, y0 + box)).getbbox() is not None:
            return False
    return True


# --------------------------------------------------------------------------- PNG


def test_seal_types_and_labels() -> None:
    assert set(SEAL_TYPES) == set(ROUND) | set(OVAL) | {"personal"}
    assert seal_label("official") == "Official Seal"
    assert SEAL_LABELS["personal"] == "Personal E-signature"
    with pytest.raises(InvalidInput, match="unknown seal type"):
        seal_label("royal")


@pytest.mark.parametrize("seal_type", SEAL_TYPES)
@pytest.mark.parametrize("name", ["Example Technology Co., Ltd.", "示例科技有限公司", "张三"])
def test_every_type_renders_a_red_transparent_png(seal_type: str, name: str) -> None:
    im = _open(render_png(seal_type, name))
    assert im.format == "PNG"
    assert im.mode == "RGBA"
    assert im.size == (400, 400)
    assert _red_pixels(im) > 0.04 * 400 * 400
    # Background is transparent: most pixels have alpha 0.
    alpha = im.getchannel("A")
    assert alpha.histogram()[0] > 0.5 * 400 * 400
    if seal_type in ROUND or seal_type in OVAL:
        assert _corners_transparent(im, 40)


def test_oval_seal_is_wider_than_tall() -> None:
    bbox = _open(render_png("financial", "Example Ltd")).getchannel("A").getbbox()
    assert bbox is not None
    x0, y0, x1, y1 = bbox
    assert (x1 - x0) > 1.3 * (y1 - y0)


@pytest.mark.parametrize("size", [64, 256, 1000])
def test_requested_size(size: int) -> None:
    assert _open(render_png("contract", "Example", size=size)).size == (size, size)


@pytest.mark.parametrize("size", [0, 10, 5000, True])
def test_bad_size_is_refused(size: int) -> None:
    with pytest.raises(InvalidInput) as e:
        render_png("official", "Example", size=size)
    assert e.value.field == "size"


@pytest.mark.parametrize("name", ["", "   ", "\x00\x01\u202e"])
def test_empty_name_is_refused(name: str) -> None:
    with pytest.raises(InvalidInput, match="must not be empty"):
        render_png("official", name)


def test_unknown_type_is_refused() -> None:
    with pytest.raises(InvalidInput, match="unknown seal type"):
        render_png("stamp", "Example")
    with pytest.raises(InvalidInput, match="unknown seal type"):
        render_svg("stamp", "Example")


def test_cjk_font_has_real_glyphs() -> None:
    font = ImageFont.truetype(_cjk_font_path(), 64)
    masks = {ch: bytes(font.getmask(ch)) for ch in ["示", "例", "口", "\U000e0fff"]}
    assert masks["示"] != masks["例"]
    assert masks["示"] != masks["口"]
    # Neither is the .notdef box drawn for a character the font lacks.
    assert masks["示"] != masks["\U000e0fff"]
    assert masks["例"] != masks["\U000e0fff"]


@pytest.mark.parametrize("seal_type", ["official", "financial", "personal"])
def test_cjk_names_render_different_glyphs(seal_type: str) -> None:
    path = _cjk_font_path()
    a = render_png(seal_type, "示例", font_path=path)
    b = render_png(seal_type, "口口", font_path=path)
    assert _open(a).tobytes() != _open(b).tobytes()
    # The default font lookup finds a CJK font too.
    assert render_png(seal_type, "示例") != render_png(seal_type, "口口")


def test_font_path_override() -> None:
    if not Path(DEJAVU).is_file():
        pytest.skip("DejaVu Sans not installed")
    latin = _open(render_png("official", "Example", font_path=DEJAVU))
    assert latin.size == (400, 400)
    with pytest.raises(ConfigurationError):
        render_png("official", "Example", font_path="/nonexistent/font.ttf")


def test_without_any_font_falls_back_and_warns(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(images, "_CJK_FONTS", ())
    monkeypatch.setattr(images, "_LATIN_FONTS", ())
    images._resolve_font.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="sealkeeper.seals.images"):
            im = _open(render_png("official", "Example 示例"))
        assert im.size == (400, 400)
        assert _red_pixels(im) > 0
        assert "no seal font found" in caplog.text
    finally:
        images._resolve_font.cache_clear()


@pytest.fixture
def default_font() -> Iterator[images._FontSpec]:
    yield images._resolve_font(None)


@pytest.mark.parametrize("seal_type", ["official", "invoice"])
@pytest.mark.parametrize(
    "name",
    [
        "ACME",
        "Example Technology Co., Ltd.",
        "International Business Machines Corporation of North America and Europe Ltd",
        "W" * 300,
        "示例科技有限公司",
        "北京示例科技发展股份有限公司上海分公司第一营业部国际贸易结算中心",
    ],
)
def test_arc_text_never_overlaps_and_stays_on_the_upper_arc(
    seal_type: str, name: str, default_font: images._FontSpec
) -> None:
    prims = images._layout(seal_type, name, default_font, None)
    arcs = [p for p in prims if isinstance(p, images._ArcText)]
    assert len(arcs) == 1
    arc = arcs[0]
    glyphs = arc.glyphs
    assert "".join(g.ch for g in glyphs) == arc.text
    if len(name) > 60:
        assert arc.text.endswith("…")
    if arc.text != name:
        assert arc.text.endswith("…")
        assert name.startswith(arc.text[:-1])
    angles = [g.angle for g in glyphs]
    assert angles == sorted(angles)
    assert all(-115 < a < 115 for a in angles)
    for g, h in itertools.pairwise(glyphs):
        half_advances = (default_font.em(g.ch) + default_font.em(h.ch)) / 2 * g.size
        assert math.dist((g.x, g.y), (h.x, h.y)) >= 0.97 * half_advances
    assert arc.size >= 0.04


def test_long_latin_personal_name_fits(default_font: images._FontSpec) -> None:
    name = "Maximilian Alexander Ferdinand von Habsburg-Lothringen " * 3
    prims = images._layout("personal", name, default_font, None)
    texts = [p for p in prims if isinstance(p, images._Text)]
    for t in texts:
        assert default_font.em(t.text) * t.size <= 0.9
    assert _open(render_png("personal", name)).size == (400, 400)


def test_cjk_personal_name_is_a_grid(default_font: images._FontSpec) -> None:
    prims = images._layout("personal", "张三丰四", default_font, None)
    chars = [p for p in prims if isinstance(p, images._Text) and len(p.text) == 1]
    assert [c.text for c in chars] == ["张", "三", "丰", "四"]
    # Right column first, read top to bottom.
    assert chars[0].x > chars[2].x and chars[0].y < chars[1].y


def test_oval_code_line() -> None:
    svg = render_svg("invoice", "示例科技有限公司", code="91110000MA01ABCD2X")
    assert "91110000MA01ABCD2X" in svg
    assert _open(render_png("invoice", "Example", code="91110000MA01ABCD2X")).size == (400, 400)


# --------------------------------------------------------------------------- SVG


@pytest.mark.parametrize("seal_type", SEAL_TYPES)
def test_svg_parses_and_contains_the_name(seal_type: str) -> None:
    name = "示例科技有限公司" if seal_type != "personal" else "Jane Doe"
    svg = render_svg(seal_type, name)
    root = ET.fromstring(svg.encode())
    assert root.tag == f"{SVG_NS}svg"
    text = "".join("".join(el.itertext()) for el in root.iter(f"{SVG_NS}text"))
    for part in name.split():
        assert part in text
    assert seal_label(seal_type).split()[0] in text
    if seal_type in ROUND + OVAL:
        assert root.find(f".//{SVG_NS}textPath") is not None


def test_svg_escapes_user_input() -> None:
    name = "Evil <script>alert(1)</script> & \"Co\" 'Ltd'"
    svg = render_svg("official", name)
    assert "<script" not in svg
    assert "&lt;script&gt;" in svg and "&amp;" in svg and "&quot;Co&quot;" in svg
    root = ET.fromstring(svg.encode())
    assert root.find(f".//{SVG_NS}script") is None
    path_text = root.find(f".//{SVG_NS}textPath")
    assert path_text is not None
    assert path_text.text == name


def test_svg_drops_characters_xml_cannot_carry() -> None:
    svg = render_svg("financial", "Ex\x00am\x1bple\u202e Ltd", code="12\x0834")
    root = ET.fromstring(svg.encode())
    text = "".join(root.itertext())
    assert "Example Ltd" in text and "1234" in text


# --------------------------------------------------------------------------- uploads


def _png(size: tuple[int, int] = (32, 16), mode: str = "RGBA", **save: object) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, (200, 0, 0, 255) if mode == "RGBA" else 128).save(
        buf, format="PNG", **save
    )
    return buf.getvalue()


def _jpeg(size: tuple[int, int] = (40, 20), **save: object) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buf, format="JPEG", **save)
    return buf.getvalue()


def test_png_upload_is_reencoded_without_metadata() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret tracking id")
    data = _png(pnginfo=info)
    assert b"secret tracking id" in data
    out, ctype = validate_uploaded_image(data, "image/png")
    assert ctype == "image/png"
    assert b"secret tracking id" not in out
    im = _open(out)
    assert im.format == "PNG" and im.size == (32, 16) and im.mode == "RGBA"
    assert "Comment" not in im.info


def test_jpeg_upload_is_reencoded_as_png_with_orientation_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees
    exif[0x010F] = "CameraMaker"
    data = _jpeg(exif=exif.tobytes())
    out, ctype = validate_uploaded_image(data, "image/jpeg; charset=binary")
    assert ctype == "image/png"
    im = _open(out)
    assert im.format == "PNG"
    assert im.size == (20, 40)
    assert b"CameraMaker" not in out
    assert not im.getexif()


def test_palette_png_keeps_transparency() -> None:
    im = Image.new("P", (8, 8), 0)
    im.putpalette([255, 0, 0, 0, 0, 0])
    buf = io.BytesIO()
    im.save(buf, format="PNG", transparency=0)
    out, _ = validate_uploaded_image(buf.getvalue(), "image/png")
    assert _open(out).mode == "RGBA"


def test_cmyk_jpeg_is_converted() -> None:
    buf = io.BytesIO()
    Image.new("CMYK", (8, 8), (0, 200, 200, 0)).save(buf, format="JPEG")
    out, _ = validate_uploaded_image(buf.getvalue(), "image/jpeg")
    assert _open(out).mode == "RGB"


@pytest.mark.parametrize(
    ("data", "ctype", "message"),
    [
        (_jpeg(), "image/png", "not a PNG image"),
        (_png(), "image/jpeg", "not a JPEG image"),
        (b"GIF89a" + b"\x00" * 40, "image/png", "not a PNG image"),
        (
            b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
            "image/svg+xml",
            "SVG images are not accepted",
        ),
        (
            b"<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg'/>",
            "image/png",
            "SVG images are not accepted",
        ),
        (_png(), "image/gif", "unsupported image type"),
        (_png(), "application/octet-stream", "unsupported image type"),
        (b"", "image/png", "empty"),
    ],
)
def test_bad_uploads_are_refused(data: bytes, ctype: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as e:
        validate_uploaded_image(data, ctype)
    assert e.value.field == "image"


@pytest.mark.parametrize("ctype", ["image/png", "image/jpeg"])
def test_truncated_upload_is_refused(ctype: str) -> None:
    big = (300, 300)
    im = Image.effect_noise(big, 60).convert("RGB")
    buf = io.BytesIO()
    im.save(buf, format="PNG" if ctype == "image/png" else "JPEG")
    data = buf.getvalue()
    with pytest.raises(InvalidInput, match="corrupt or truncated"):
        validate_uploaded_image(data[: len(data) // 2], ctype)


def test_corrupt_png_checksum_is_refused() -> None:
    data = bytearray(_png())
    data[-20] ^= 0xFF  # inside the image data chunk
    with pytest.raises(InvalidInput):
        validate_uploaded_image(bytes(data), "image/png")


@pytest.mark.parametrize("size", [(4001, 10), (10, 5000), (4100, 4100)])
def test_huge_dimensions_are_refused(size: tuple[int, int]) -> None:
    data = _png(size, mode="L")
    with pytest.raises(InvalidInput, match="at most 4000x4000"):
        validate_uploaded_image(data, "image/png")


def test_decompression_bomb_header_is_refused() -> None:
    data = bytearray(_png((4, 4), mode="L"))
    # Rewrite IHDR to claim 40000 x 40000 pixels (with a correct CRC).
    ihdr = b"IHDR" + struct.pack(">II", 40_000, 40_000) + bytes(data[24:29])
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(ihdr) & 0xFFFFFFFF)
    with pytest.raises(InvalidInput, match="too large"):
        validate_uploaded_image(bytes(data), "image/png")


def test_oversize_upload_is_refused() -> None:
    data = _png((200, 200))
    with pytest.raises(InvalidInput, match="at most 100 bytes"):
        validate_uploaded_image(data, "image/png", max_bytes=100)
    out, _ = validate_uploaded_image(data, "image/png", max_bytes=len(data))
    assert _open(out).size == (200, 200)


_SAMPLES = {"image/png": _png((24, 24)), "image/jpeg": _jpeg((24, 24))}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ctype=st.sampled_from(sorted(_SAMPLES)),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
    cut=st.integers(0, 10_000),
)
def test_mangled_uploads_never_raise_anything_but_invalid_input(
    ctype: str, edits: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(_SAMPLES[ctype])
    for pos, value in edits:
        data[pos % len(data)] = value
    data = data[: max(1, cut % (len(data) + 1))]
    try:
        out, out_type = validate_uploaded_image(bytes(data), ctype)
    except InvalidInput:
        return
    assert out_type == "image/png"
    assert _open(out).format == "PNG"


@settings(max_examples=60, deadline=None)
@given(name=st.text(min_size=1, max_size=150), seal_type=st.sampled_from(SEAL_TYPES))
def test_any_name_renders_or_is_refused_cleanly(name: str, seal_type: str) -> None:
    try:
        svg = render_svg(seal_type, name)
    except InvalidInput:
        return
    ET.fromstring(svg.encode())
    assert _open(render_png(seal_type, name, size=96)).size == (96, 96)
