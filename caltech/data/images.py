"""Image files: which extensions the project reads (one list, for the split and predict.py alike), checking that a
file decodes, and opening one as the RGB image every transform expects.
"""
import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

# What Pillow reports for each image extension; a file whose content disagrees is mislabelled.
FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".gif": "GIF",
           ".ppm": "PPM", ".pgm": "PPM", ".pbm": "PPM", ".tif": "TIFF", ".tiff": "TIFF",
           ".webp": "WEBP"}
EXTENSIONS = tuple(FORMATS)


def open_rgb(path):
    """The image at `path` as an RGB PIL image (Caltech has greyscale, mode L, images; the model wants RGB)."""
    with open(path, "rb") as f:
        return Image.open(f).convert("RGB")


def check_image(path):
    """Fully decode one image; return None if usable, else the reason it is not."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            return "empty file"
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                fmt = im.format
                im.load()
    except UnidentifiedImageError:
        return "not an image (unrecognised content)"
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        msg = str(e).lower()
        return f"truncated ({e})" if "truncated" in msg else f"corrupt ({e})"
    expected = FORMATS.get(path.suffix.lower())
    if expected and fmt != expected:
        return f"mislabelled (extension {path.suffix} but content is {fmt})"
    return None
