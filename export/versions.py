"""Numbered version folders, written whole or not at all.

Every export format (SavedModel, ONNX, LiteRT) writes BASE/NAME/VERSION the
same way: the version is written into a hidden temporary sibling
(`BASE/NAME/.tmp-<version>-<random>`, which TF Serving and Triton ignore:
they load numeric folders only) and renamed into place when complete, so a
crash leaves either a whole version or none.
"""

import contextlib
import os
import shutil
import tempfile


def next_version(base):
    """1 + the largest numeric version under `base` (1 when there is none)."""
    if not os.path.isdir(base):
        return 1
    versions = [int(name) for name in os.listdir(base) if name.isdigit()]
    return max(versions, default=0) + 1


def version_path(export_dir, version=None):
    """export_dir/VERSION for a new version (default: the next free one).
    Raises FileExistsError when it exists: versions are immutable."""
    version = next_version(export_dir) if version is None else int(version)
    final = os.path.join(export_dir, str(version))
    if os.path.exists(final):
        raise FileExistsError(f"{final} exists: versions are immutable (a server may have "
                              "loaded it); export to the next version (the default) or remove "
                              "it first.")
    return final


@contextlib.contextmanager
def writing(final):
    """`with writing(final) as folder:` write the version into `folder`; on a
    clean exit it becomes `final`, readable by other users (a server may run
    as one); on an error it is removed."""
    export_dir, version = os.path.split(final)
    os.makedirs(export_dir, exist_ok=True)
    temporary = tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=export_dir)
    try:
        yield temporary
        _readable(temporary)  # mkdtemp makes it 0700
        os.rename(temporary, final)
    finally:
        if os.path.exists(temporary):
            shutil.rmtree(temporary, ignore_errors=True)


def _readable(folder):
    """Folders 0777 and files 0666, less the umask, as os.makedirs would make them."""
    umask = os.umask(0)
    os.umask(umask)
    for root, folders, files in os.walk(folder):
        os.chmod(root, 0o777 & ~umask)
        for name in files:
            os.chmod(os.path.join(root, name), 0o666 & ~umask)
