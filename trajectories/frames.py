"""Content-addressed screenshot files: hash, encode, store once, load back.

A frame's identity is the sha256 of ``b"{H}x{W}x3:"`` followed by its raw RGB bytes, so two
identical screenshots (a waiting step, an unchanged page) are one file however many steps or
episodes refer to them. Files are written atomically (temporary file, fsync, ``os.replace``,
directory fsync), so a frame file that exists is complete. This module knows nothing about
episodes or steps.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from envs.errors import PixelPilotError
from trajectories.schema import FRAME_FORMATS, FrameRef, SchemaError


class FrameMissingError(PixelPilotError, FileNotFoundError):
    """A step refers to a frame file that is not there (copied without its frames directory?)."""


@dataclass(frozen=True)
class FrameCodec:
    """How frames are encoded. PNG is lossless (the default: training sees exact pixels);
    JPEG/WebP are 5-10x smaller and faster to write but lossy."""

    format: str = "png"
    png_compress_level: int = 1
    quality: int = 90

    def __post_init__(self) -> None:
        if self.format not in FRAME_FORMATS:
            raise SchemaError(f"frame format must be one of {FRAME_FORMATS}, got {self.format!r}")
        if not 0 <= self.png_compress_level <= 9:
            raise SchemaError(f"png_compress_level must be 0..9 (1 is fast, 9 is small), got {self.png_compress_level}")
        if not 1 <= self.quality <= 100:
            raise SchemaError(f"quality must be 1..100, got {self.quality}")

    def encode(self, frame_HWC: np.ndarray) -> bytes:
        """Encode an RGB uint8 (H, W, 3) array."""
        from PIL import Image

        buf = io.BytesIO()
        image = Image.fromarray(frame_HWC, "RGB")
        if self.format == "png":
            image.save(buf, format="PNG", compress_level=self.png_compress_level)
        elif self.format == "jpeg":
            image.save(buf, format="JPEG", quality=self.quality)
        else:
            image.save(buf, format="WEBP", quality=self.quality)
        return buf.getvalue()


def check_frame(frame_HWC: object) -> np.ndarray:
    """Return ``frame_HWC`` if it is an RGB uint8 (H, W, 3) array, else raise ``SchemaError``."""
    if not isinstance(frame_HWC, np.ndarray) or frame_HWC.dtype != np.uint8 or frame_HWC.ndim != 3 \
            or frame_HWC.shape[2] != 3 or frame_HWC.shape[0] == 0 or frame_HWC.shape[1] == 0:
        raise SchemaError("a screenshot must be an RGB uint8 array of shape (H, W, 3), got "
                          f"{type(frame_HWC).__name__} {getattr(frame_HWC, 'dtype', '')} {getattr(frame_HWC, 'shape', '')}")
    return frame_HWC


def frame_sha256(frame_HWC: np.ndarray) -> str:
    """The content hash that names a frame (shape-prefixed so a reshaped buffer differs)."""
    h, w, _ = frame_HWC.shape
    digest = hashlib.sha256(f"{h}x{w}x3:".encode())
    digest.update(np.ascontiguousarray(frame_HWC).data)  # hashlib releases the GIL on big buffers
    return digest.hexdigest()


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (new/renamed files) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` so that readers see either nothing or all of it."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        if fsync:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if fsync:
        fsync_dir(path.parent)


class FrameStore:
    """A directory of content-addressed frames, shareable by many episodes and processes.

    ``put`` is thread-safe; two writers storing the same frame at once both replace the file
    with identical bytes, which is harmless.
    """

    def __init__(self, directory: Path | str, codec: FrameCodec | None = None, *, fsync: bool = True) -> None:
        self.directory = Path(directory)
        self.codec = codec or FrameCodec()
        self.fsync = fsync
        self._known: set[str] = set()
        self._pending: dict[str, threading.Event] = {}  # content being written by another thread
        self._lock = threading.Lock()
        self.stats = {"frames": 0, "new_frames": 0, "bytes_written": 0}

    def put(self, frame_HWC: np.ndarray) -> FrameRef:
        """Store a frame (once per content) and return its reference.

        If another thread is storing the same content right now, wait for it rather than
        encoding the frame twice (consecutive identical screenshots are the common case).
        """
        frame_HWC = check_frame(frame_HWC)
        ref = FrameRef(frame_sha256(frame_HWC), self.codec.format, int(frame_HWC.shape[1]), int(frame_HWC.shape[0]))
        name, path = ref.filename, self.directory / ref.filename
        with self._lock:
            self.stats["frames"] += 1
            if name in self._known:
                return ref
            pending = self._pending.get(name)
            owner = pending is None
            if owner:
                pending = self._pending[name] = threading.Event()
        if not owner:
            pending.wait()
            if path.exists():
                return ref
            # the other writer failed: fall through and try ourselves (raising our own error)
        try:
            if not path.exists():
                data = self.codec.encode(frame_HWC)
                self.directory.mkdir(parents=True, exist_ok=True)
                write_atomic(path, data, fsync=self.fsync)
                with self._lock:
                    self.stats["new_frames"] += 1
                    self.stats["bytes_written"] += len(data)
            with self._lock:
                self._known.add(name)
        finally:
            if owner:
                with self._lock:
                    self._pending.pop(name, None)
                pending.set()
        return ref

    def path(self, ref: FrameRef) -> Path:
        """Where ``ref``'s file lives (whether or not it exists)."""
        return self.directory / ref.filename

    def read_bytes(self, ref: FrameRef) -> bytes:
        """The encoded file's bytes."""
        try:
            return self.path(ref).read_bytes()
        except FileNotFoundError:
            raise FrameMissingError(f"frame {ref.filename} is missing from {self.directory}; copy the run's "
                                    "frames directory along with its episodes") from None

    def load(self, ref: FrameRef) -> np.ndarray:
        """Decode ``ref`` to an RGB uint8 (H, W, 3) array."""
        from PIL import Image

        with Image.open(io.BytesIO(self.read_bytes(ref))) as image:
            return np.asarray(image.convert("RGB"))
