"""Image files: which extensions the project reads (one list, for the split and predict.py alike), checking that a
file decodes, and opening one as the RGB image every transform expects.
"""
import hashlib
import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..utils import UserError

# What Pillow reports for each image extension; a file whose content disagrees is mislabelled.
FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".gif": "GIF",
           ".ppm": "PPM", ".pgm": "PPM", ".pbm": "PPM", ".tif": "TIFF", ".tiff": "TIFF",
           ".webp": "WEBP"}
EXTENSIONS = tuple(FORMATS)
# what reading a damaged, truncated or unsupported image raises
UNREADABLE = (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning,
              UserError)
# modes with more than 8 bits a channel -> their largest value: 16-bit greyscale PNG and TIFF open as I;16 or I
WIDE = {"I;16": 65535, "I;16B": 65535, "I;16L": 65535, "I;16N": 65535, "I": 65535}
NARROW = ("1", "L", "P", "RGB", "RGBX", "CMYK", "YCbCr")  # what PIL's own conversion to RGB reads faithfully


def open_rgb(path):
    """The image at `path` as an RGB PIL image (to_rgb): what the cache, both loaders and predict.py read. An image
    over PIL's decompression-bomb size is refused (raised), as the split refuses it, rather than warned about."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with open(path, "rb") as f, Image.open(f) as img:
            return to_rgb(img)


def to_rgb(img):
    """An RGB copy of `img` whatever its mode (Caltech has greyscale, mode L, images; the model wants RGB):
    16-bit greyscale scaled to 8 bits (a plain conversion clips it to white), transparency laid over white, an
    animation's first frame; a mode without a faithful conversion is a UserError naming it."""
    if img.mode in WIDE:
        pixels = np.asarray(img, dtype=np.float64)
        return Image.fromarray(np.clip(pixels / WIDE[img.mode] * 255 + 0.5, 0, 255).astype(np.uint8)).convert("RGB")
    if img.mode == "P" and "transparency" in img.info or img.mode in ("PA", "LA", "RGBA", "La", "RGBa"):
        rgba = img.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    if img.mode not in NARROW:
        raise UserError(f"image mode {img.mode} cannot be read as RGB faithfully")
    return img.convert("RGB")


def file_sha256(path):
    """The SHA-256 of a file's bytes: what a split records of each image's content."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def check_image(path):
    """Fully decode one image, as open_rgb reads it; return (None, its SHA-256) if usable, else (the reason it is
    not, None). The bytes are read once for both."""
    path = Path(path)
    try:
        data = path.read_bytes()
        if not data:
            return "empty file", None
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                fmt = im.format
                to_rgb(im)
    except UnidentifiedImageError:
        return "not an image (unrecognised content)", None
    except UserError as e:
        return str(e), None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        msg = str(e).lower()
        return (f"truncated ({e})" if "truncated" in msg else f"corrupt ({e})"), None
    expected = FORMATS.get(path.suffix.lower())
    if expected and fmt != expected:
        return f"mislabelled (extension {path.suffix} but content is {fmt})", None
    return None, hashlib.sha256(data).hexdigest()
