"""Photos of events — 现场照片: decoded by Pillow before anything is kept, stored under
DATA_DIR/governance/photos/<event id>/, removed again if the transaction rolls back."""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from sqlalchemy.orm import Session

from haihe.core.db import on_rollback, utcnow
from haihe.core.errors import InvalidInput, NotFound
from haihe.core.settings import Settings
from haihe.governance.models import Photo

FORMATS = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
}
MAX_PIXELS = 60_000_000  # a bomb that decodes to more than this is refused


@dataclass(frozen=True)
class CheckedPhoto:
    """Bytes that Pillow decoded as a JPEG, PNG or WebP image within the size limit."""

    data: bytes
    media_type: str
    extension: str
    width: int
    height: int
    sha256: str


def check_photo(data: bytes, *, settings: Settings, name: str = "photo") -> CheckedPhoto:
    """The photo, once it is known to be a real image no bigger than the limit; else 422."""
    limit = settings.governance_photo_max_bytes
    if len(data) > limit:
        raise InvalidInput(
            f"{name} is {len(data):,} bytes; the limit is {limit:,} bytes "
            "(HAIHE_GOVERNANCE_PHOTO_MAX_BYTES)"
        )
    if not data:
        raise InvalidInput(f"{name} is empty")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            kind = probe.format or ""
            width, height = probe.size
            if width * height > MAX_PIXELS:
                raise InvalidInput(f"{name} is {width}×{height} pixels; too large to keep")
            probe.load()  # decode it all: a truncated or disguised file fails here
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError):
        raise InvalidInput(f"{name} is not an image Haihe can read (JPEG, PNG or WebP)") from None
    if kind not in FORMATS:
        raise InvalidInput(f"{name} is a {kind or 'unknown'} image; send JPEG, PNG or WebP")
    media_type, extension = FORMATS[kind]
    return CheckedPhoto(
        data, media_type, extension, width, height, hashlib.sha256(data).hexdigest()
    )


def photo_dir(settings: Settings, event_id: int) -> Path:
    return settings.data_dir / "governance" / "photos" / str(event_id)


def store_photo(
    session: Session, *, settings: Settings, event_id: int, photo: CheckedPhoto
) -> Photo:
    """Write the file and its row; the file goes again if the transaction rolls back."""
    folder = photo_dir(settings, event_id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{photo.sha256[:32]}.{photo.extension}"
    created = not path.exists()
    if created:
        tmp = path.with_suffix(".part")
        with open(tmp, "wb") as fh:
            fh.write(photo.data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

        def forget(_after: Session) -> None:
            path.unlink(missing_ok=True)

        on_rollback(session, forget)
    row = Photo(
        event_id=event_id,
        path=str(path.relative_to(settings.data_dir)),
        media_type=photo.media_type,
        bytes=len(photo.data),
        width=photo.width,
        height=photo.height,
        sha256=photo.sha256,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row


def photo_file(settings: Settings, photo: Photo) -> Path:
    path = settings.data_dir / photo.path
    if not path.is_file():
        raise NotFound(f"the file of photo {photo.id} is missing")
    return path
