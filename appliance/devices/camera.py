"""Frame sources behind one small interface: the Pi camera, a folder of pictures, nothing.

The kiosk loop only sees ``FrameSource``: ``open()``, ``read(timeout_s)`` and ``close()``,
each frame a grey 2-D uint8 array (the scanner needs luminance only). picamera2 imports
libcamera at import time, so it is imported inside ``Picamera2Source.open`` and nowhere else.
No video-file source: no installed library decodes video without heavy new dependencies
(OpenCV, PyAV); turn a clip into a folder of frames and use the "images" source instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image, UnidentifiedImageError

from appliance.config import CameraConfig
from appliance.core.errors import CameraError, ConfigError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})

# libcamera control values, as plain ints so this module never imports libcamera.
_AF_MODE_CONTINUOUS = 2
_AF_SPEED_FAST = 1
_AE_METERING_CENTRE_WEIGHTED = 0


@dataclass(frozen=True, eq=False)
class Frame:
    """One grey frame and when it arrived (``time.monotonic()`` seconds)."""

    grey: np.ndarray
    captured_at: float

    def __post_init__(self) -> None:
        if self.grey.ndim != 2 or self.grey.dtype != np.uint8:
            raise ValueError("a frame must be a 2-D uint8 array")
        self.grey.setflags(write=False)  # frames are shared between stages: keep them intact


class FrameSource(Protocol):
    """A camera or stand-in. ``read`` returns None when no frame came within the timeout."""

    def open(self) -> None: ...

    def read(self, timeout_s: float) -> Frame | None: ...

    def close(self) -> None: ...


def _fit_grey(img: Image.Image, width: int, height: int) -> np.ndarray:
    """Scale to fit width x height keeping the aspect, centred on mid grey, as a camera
    frame always has the configured size."""
    grey = img.convert("L")
    scale = min(width / grey.width, height / grey.height)
    size = (max(1, round(grey.width * scale)), max(1, round(grey.height * scale)))
    if size != grey.size:
        grey = grey.resize(size, Image.Resampling.BILINEAR)
    canvas = Image.new("L", (width, height), 128)
    canvas.paste(grey, ((width - size[0]) // 2, (height - size[1]) // 2))
    return np.asarray(canvas)


class FramePacer:
    """Frames due at a steady rate, for sources that make their frames (files, demo).

    ``next_frame(timeout_s)`` waits until the next frame is due and returns the time it
    is taken, or None when that is further away than the timeout. A slow consumer skips
    frames rather than receiving a burst of late ones. ``fps`` 0: no waiting.
    """

    def __init__(
        self,
        fps: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._interval = 1.0 / fps if fps > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next_due = clock()

    def restart(self) -> float:
        self._next_due = now = self._clock()
        return now

    def next_frame(self, timeout_s: float) -> float | None:
        wait = self._next_due - self._clock()
        if wait > timeout_s:
            self._sleep(timeout_s)
            return None
        if wait > 0:
            self._sleep(wait)
        now = self._clock()
        self._next_due = max(self._next_due, now - self._interval) + self._interval
        return now


class ImageFolderSource:
    """Pictures shown one after another, each for ``frames_per_image`` frames at ``fps``.

    For development, tests and the demo. ``fps`` 0 means as fast as asked. With ``loop``
    false, ``finished`` turns true after the last picture and ``read`` returns None.
    ``clock`` and ``sleep`` are injectable so tests run without waiting.
    """

    def __init__(
        self,
        images: Path | Sequence[Path],
        *,
        width: int = 640,
        height: int = 480,
        fps: float = 10.0,
        frames_per_image: int = 10,
        loop: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._images = images
        self._size = (width, height)
        self._pacer = FramePacer(fps, clock, sleep)
        self._per_image = max(1, frames_per_image)
        self._loop = loop
        self._frames: list[np.ndarray] | None = None
        self._index = 0
        self.finished = False

    def _paths(self) -> list[Path]:
        if isinstance(self._images, Path | str):
            folder = Path(self._images)
            if not folder.is_dir():
                raise CameraError(f"image folder {folder} does not exist")
            paths = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
            return sorted(paths)
        return [Path(p) for p in self._images]

    def open(self) -> None:
        """Load and convert every picture once, so reading a frame costs nothing."""
        paths = self._paths()
        if not paths:
            raise CameraError(f"no PNG or JPEG pictures in {self._images}")
        frames = []
        for path in paths:
            try:
                with Image.open(path) as img:
                    frames.append(_fit_grey(img, *self._size))
            except (OSError, UnidentifiedImageError) as e:
                raise CameraError(f"cannot read picture {path}: {e}") from e
        self._frames = frames
        self._index = 0
        self._pacer.restart()
        self.finished = False
        log.info("image source: %d pictures, %d frames each", len(frames), self._per_image)

    def read(self, timeout_s: float) -> Frame | None:
        if self._frames is None:
            raise CameraError("image source read before open")
        if self.finished:
            return None
        now = self._pacer.next_frame(timeout_s)
        if now is None:
            return None
        picture = self._index // self._per_image
        if picture >= len(self._frames):
            if not self._loop:
                self.finished = True
                return None
            self._index, picture = 0, 0
        self._index += 1
        return Frame(self._frames[picture], now)

    def close(self) -> None:
        self._frames = None


class NullSource:
    """No camera (a kiosk fed only by a USB/serial scanner): never yields a frame."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep) -> None:
        self._sleep = sleep

    def open(self) -> None:
        pass

    def read(self, timeout_s: float) -> Frame | None:
        self._sleep(timeout_s)
        return None

    def close(self) -> None:
        pass


def _import_picamera2() -> Any:
    try:
        from picamera2 import Picamera2
    except ImportError as e:
        raise CameraError(
            "picamera2 is not installed (on Raspberry Pi OS: apt install python3-picamera2)"
        ) from e
    return Picamera2()


class Picamera2Source:
    """The Pi camera's lores YUV420 stream; a frame is its Y (luminance) plane.

    The ISP scales to the lores size, so the CPU never touches full-resolution pixels.
    Exposure is biased down (``exposure_ev_down`` stops, centre-weighted metering) because
    a phone screen is the brightest thing in view and over-exposure merges its modules.
    Continuous autofocus is turned on where the module has it (Camera Module 3).
    ``camera_factory`` returns a ``Picamera2``-like object; tests pass a fake.
    """

    def __init__(
        self,
        *,
        width: int = 640,
        height: int = 480,
        fps: float = 10.0,
        autofocus: bool = True,
        exposure_ev_down: float = 1.0,
        camera_factory: Callable[[], Any] = _import_picamera2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._size = (width, height)
        self._fps = fps
        self._autofocus = autofocus
        self._ev_down = exposure_ev_down
        self._factory = camera_factory
        self._clock = clock
        self._cam: Any = None
        self._job: Any = None
        self.has_autofocus = False

    def open(self) -> None:
        try:
            cam = self._factory()
        except CameraError:
            raise
        except Exception as e:  # Picamera2() raises IndexError, RuntimeError... with no camera
            raise CameraError(f"no Pi camera found: {e}") from e
        try:
            config = cam.create_preview_configuration(
                main={"size": self._size},
                lores={"size": self._size, "format": "YUV420"},
                controls={"FrameRate": self._fps} if self._fps > 0 else {},
            )
            cam.configure(config)
            controls: dict[str, Any] = {
                "ExposureValue": -self._ev_down,
                "AeMeteringMode": _AE_METERING_CENTRE_WEIGHTED,
            }
            self.has_autofocus = "AfMode" in cam.camera_controls
            if self._autofocus and self.has_autofocus:
                controls["AfMode"] = _AF_MODE_CONTINUOUS
                if "AfSpeed" in cam.camera_controls:
                    controls["AfSpeed"] = _AF_SPEED_FAST
            cam.set_controls(controls)
            cam.start()
            self._size = tuple(cam.camera_config["lores"]["size"])
        except Exception as e:
            _close_quietly(cam)
            raise CameraError(f"cannot start the Pi camera: {e}") from e
        self._cam, self._job = cam, None
        log.info("Pi camera started: lores %dx%d, autofocus %s", *self._size, self.has_autofocus)

    def read(self, timeout_s: float) -> Frame | None:
        if self._cam is None:
            raise CameraError("Pi camera read before open")
        try:
            if self._job is None:  # a timed-out capture stays pending for the next read
                self._job = self._cam.capture_array("lores", wait=False)
            buf = self._cam.wait(self._job, timeout=timeout_s)
        except TimeoutError:
            return None
        except Exception as e:
            self._job = None
            raise CameraError(f"Pi camera lost: {e}") from e
        self._job = None
        width, height = self._size
        return Frame(np.array(buf[:height, :width], dtype=np.uint8), self._clock())

    def close(self) -> None:
        cam, self._cam, self._job = self._cam, None, None
        if cam is not None:
            _close_quietly(cam)


def _close_quietly(cam: Any) -> None:
    """Best-effort stop and close: a camera that failed may fail again on the way out."""
    for step in ("stop", "close"):
        try:
            getattr(cam, step)()
        except Exception as e:  # noqa: BLE001 - a failed camera may fail again on the way out
            log.debug("camera %s failed: %s", step, e)


def open_frame_source(config: CameraConfig) -> FrameSource:
    """The source the configuration names, not yet opened (the loop opens and reopens it)."""
    if config.source == "images":
        return ImageFolderSource(
            config.images_dir,
            width=config.width,
            height=config.height,
            fps=config.fps,
            frames_per_image=config.frames_per_image,
            loop=config.loop,
        )
    if config.source == "picamera2":
        return Picamera2Source(
            width=config.width,
            height=config.height,
            fps=config.fps,
            autofocus=config.autofocus,
            exposure_ev_down=config.exposure_ev_down,
        )
    if config.source == "none":
        return NullSource()
    if config.source == "video":
        raise CameraError(
            "camera.source 'video' is not available: no video decoder is installed; "
            "extract the frames into a folder and use camera.source = 'images'"
        )
    raise ConfigError(f"unknown camera.source '{config.source}' (choose images, picamera2 or none)")
