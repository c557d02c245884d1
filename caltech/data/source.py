"""Find, download and unpack the raw Caltech-101 images (the `101_ObjectCategories` folder).

Accepted sources: the folder itself, the official `caltech-101.zip` (CaltechDATA record
mzrjq-6wc02), or the `101_ObjectCategories.tar.gz` inside it. Archives are unpacked under the
data root (`data/` by default) into a temporary folder first, so an interrupted unpack is never
mistaken for a complete one.
"""
import shutil
import tarfile
import tempfile
import urllib.error
import zipfile
from pathlib import Path

from torchvision.datasets.utils import download_url

from ..utils import UserError

URL = "https://data.caltech.edu/records/mzrjq-6wc02/files/caltech-101.zip"
ZIP_NAME = "caltech-101.zip"
ZIP_MD5 = "3138e1922a9193bfa496528edbbc45d0"
FOLDER = "101_ObjectCategories"
TAR_NAME = "101_ObjectCategories.tar.gz"


def where_to_put(data_root):
    return (f"put {ZIP_NAME}, {TAR_NAME} or the unpacked {FOLDER} folder in {data_root}/, "
            f"or pass --source PATH")


def _named_folder(root):
    """`root/101_ObjectCategories` or `root/caltech-101/101_ObjectCategories`, if present."""
    for candidate in (root / FOLDER, root / "caltech-101" / FOLDER):
        if candidate.is_dir():
            return candidate
    return None


def _archive_in(root):
    for candidate in (root / TAR_NAME, root / "caltech-101" / TAR_NAME, root / ZIP_NAME):
        if candidate.is_file():
            return candidate
    return None


def resolve_source(source=None, data_root="data"):
    """Return the path of a `101_ObjectCategories`-style folder, unpacking or downloading as needed.

    With `source`: that folder (or one holding it or an archive), or that archive. Without: look
    in `data_root`, then download there.
    """
    data_root = Path(data_root)
    if source is not None:
        source = Path(source).expanduser()
        if not source.exists():
            raise UserError(f"--source {source} does not exist; {where_to_put(data_root)}")
        if source.is_file():
            return unpack(source, data_root)
        found = _named_folder(source)
        if found is None and any(p.is_dir() for p in source.iterdir()):
            found = source  # a folder of class folders under another name
        if found is not None:
            return found
        archive = _archive_in(source)
        if archive is None:
            raise UserError(f"--source {source} holds no class folders and no Caltech-101 archive; "
                            f"{where_to_put(data_root)}")
        return unpack(archive, data_root)

    found = _named_folder(data_root)
    if found is not None:
        return found
    archive = _archive_in(data_root) or fetch(data_root)
    return unpack(archive, data_root)


def fetch(data_root):
    """Download the official archive into `data_root`, verifying its MD5 checksum."""
    data_root = Path(data_root)
    print(f"downloading Caltech-101 ({URL}) into {data_root}/ ...")
    try:
        download_url(URL, str(data_root), filename=ZIP_NAME, md5=ZIP_MD5)
    except (urllib.error.URLError, OSError, RuntimeError) as e:
        # torchvision leaves a partial or corrupt file behind; drop it so a retry starts clean.
        (data_root / ZIP_NAME).unlink(missing_ok=True)
        reason = "checksum mismatch" if isinstance(e, RuntimeError) else f"{type(e).__name__}: {e}"
        raise UserError(f"could not download Caltech-101 ({reason}); {where_to_put(data_root)}") from None
    return data_root / ZIP_NAME


def unpack(archive, data_root):
    """Unpack a `.zip` or `.tar.gz` to `data_root/101_ObjectCategories` and return that folder."""
    archive, data_root = Path(archive), Path(data_root)
    target = data_root / FOLDER
    if target.is_dir():
        return target
    data_root.mkdir(parents=True, exist_ok=True)
    print(f"unpacking {archive} into {data_root}/ ...")
    with tempfile.TemporaryDirectory(dir=data_root, prefix=".unpack-") as tmp:
        tmp = Path(tmp)
        try:
            if zipfile.is_zipfile(archive):
                with zipfile.ZipFile(archive) as zf:
                    members = [m for m in zf.namelist()
                               if m.endswith(TAR_NAME) and not m.startswith("__MACOSX")]
                    if members:  # the official zip wraps the images in an inner tar.gz
                        inner = Path(zf.extract(members[0], tmp))
                        _untar(inner, tmp)
                    else:
                        zf.extractall(tmp)
            elif tarfile.is_tarfile(archive):
                _untar(archive, tmp)
            else:
                raise UserError(f"{archive} is neither a zip nor a tar archive")
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as e:
            raise UserError(f"{archive} is damaged and could not be unpacked ({e}); "
                            f"delete it and {where_to_put(data_root)}") from None
        found = _named_folder(tmp)
        if found is None:
            raise UserError(f"{archive} does not contain a {FOLDER} folder")
        shutil.move(str(found), str(target))
    return target


def _untar(path, dest):
    with tarfile.open(path) as tf:
        tf.extractall(dest, filter="data")  # refuses absolute paths and links out of `dest`
