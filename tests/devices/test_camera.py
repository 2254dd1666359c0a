"""Frame sources: the image folder with a fake clock, the Pi camera against a fake
Picamera2 (the real one needs libcamera and a camera), and choice by configuration."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import segno
from PIL import Image
from support import FakeClock

from appliance.config import CameraConfig
from appliance.core.errors import CameraError, ConfigError
from appliance.devices.camera import (
    Frame,
    ImageFolderSource,
    NullSource,
    Picamera2Source,
    open_frame_source,
)
from appliance.devices.scanner import make_decoder


def write_pictures(folder: Path, count: int, size: tuple[int, int] = (320, 240)) -> list[Path]:
    paths = []
    for i in range(count):
        path = folder / f"{i:02d}.png"
        Image.new("L", size, 10 + 40 * i).save(path)
        paths.append(path)
    return paths


def source(images: Any, clock: FakeClock, **kw: Any) -> ImageFolderSource:
    return ImageFolderSource(images, clock=clock, sleep=clock.sleep, **kw)


def test_frames_follow_pictures_in_name_order(tmp_path: Path) -> None:
    write_pictures(tmp_path, 3)
    (tmp_path / "notes.txt").write_text("ignored")
    clock = FakeClock()
    src = source(tmp_path, clock, fps=10, frames_per_image=2, loop=False)
    src.open()
    levels = []
    while (frame := src.read(timeout_s=1.0)) is not None:
        levels.append(int(frame.grey[240, 320]))
    assert levels == [10, 10, 50, 50, 90, 90]
    assert src.finished


def test_frames_are_paced_at_fps_and_stamped_with_the_clock(tmp_path: Path) -> None:
    write_pictures(tmp_path, 1)
    clock = FakeClock(100.0)
    src = source(tmp_path, clock, fps=20, frames_per_image=5)
    src.open()
    stamps = [src.read(timeout_s=1.0).captured_at for _ in range(4)]
    assert stamps == pytest.approx([100.0, 100.05, 100.10, 100.15])


def test_read_returns_none_when_the_next_frame_is_later_than_the_timeout(tmp_path: Path) -> None:
    write_pictures(tmp_path, 1)
    clock = FakeClock()
    src = source(tmp_path, clock, fps=2)
    src.open()
    assert src.read(timeout_s=0.1) is not None
    assert src.read(timeout_s=0.1) is None  # next frame due in 0.5 s
    assert clock.slept == [pytest.approx(0.1)]
    assert src.read(timeout_s=1.0) is not None


def test_looping_starts_again(tmp_path: Path) -> None:
    paths = write_pictures(tmp_path, 2)
    clock = FakeClock()
    src = source(list(reversed(paths)), clock, fps=0, frames_per_image=1, loop=True)
    src.open()
    levels = [int(src.read(timeout_s=0).grey[0, 320]) for _ in range(5)]
    assert levels == [50, 10, 50, 10, 50]
    assert not src.finished


def test_pictures_become_grey_frames_of_the_configured_size(tmp_path: Path) -> None:
    path = tmp_path / "wide.jpg"
    Image.new("RGB", (400, 100), (255, 255, 255)).save(path)
    src = source([path], FakeClock(), width=640, height=480, fps=0)
    src.open()
    grey = src.read(timeout_s=0).grey
    assert grey.shape == (480, 640) and grey.dtype == np.uint8
    assert grey[240, 320] == 255  # picture scaled to 640x160, centred
    assert grey[10, 320] == 128  # letterbox


def test_image_source_frames_decode(tmp_path: Path) -> None:
    qr = segno.make("LC1:HELLO KIOSK", error="m", micro=False)
    qr.save(tmp_path / "code.png", scale=6, border=4)
    src = source(tmp_path, FakeClock(), fps=0)
    src.open()
    assert make_decoder("both").decode(src.read(timeout_s=0).grey) == ["LC1:HELLO KIOSK"]


def test_image_source_errors_are_camera_errors(tmp_path: Path) -> None:
    with pytest.raises(CameraError, match="does not exist"):
        source(tmp_path / "absent", FakeClock()).open()
    with pytest.raises(CameraError, match="no PNG or JPEG"):
        source(tmp_path, FakeClock()).open()
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    with pytest.raises(CameraError, match=r"bad\.png"):
        source(tmp_path, FakeClock()).open()
    with pytest.raises(CameraError, match="before open"):
        source(tmp_path, FakeClock()).read(timeout_s=0)


def test_frame_is_checked_and_read_only() -> None:
    frame = Frame(np.zeros((4, 4), np.uint8), 1.0)
    with pytest.raises(ValueError, match="read-only"):
        frame.grey[0, 0] = 1
    with pytest.raises(ValueError, match="2-D uint8"):
        Frame(np.zeros((4, 4, 3), np.uint8), 1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        frame.captured_at = 2.0  # type: ignore[misc]


def test_null_source_waits_and_gives_nothing() -> None:
    clock = FakeClock()
    src = NullSource(sleep=clock.sleep)
    src.open()
    assert src.read(timeout_s=0.25) is None
    assert clock.slept == [0.25]
    src.close()


# --- Picamera2Source against a fake -----------------------------------------------------


class FakePicamera2:
    """Enough of Picamera2 for the adapter: lores YUV420 arrays with a padded stride."""

    def __init__(
        self,
        controls: tuple[str, ...] = ("AfMode", "AfSpeed", "ExposureValue"),
        fail_wait: Exception | None = None,
    ) -> None:
        self.camera_controls = {name: (0, 0, 0) for name in controls}
        self.set: dict[str, Any] = {}
        self.config: dict[str, Any] = {}
        self.camera_config: dict[str, Any] = {}
        self.started = self.closed = False
        self.fail_wait = fail_wait
        self.jobs = 0

    def create_preview_configuration(self, **kw: Any) -> dict[str, Any]:
        return dict(kw)

    def configure(self, config: dict[str, Any]) -> None:
        self.config = config
        self.camera_config = config

    def set_controls(self, controls: dict[str, Any]) -> None:
        self.set.update(controls)

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        self.closed = True

    def capture_array(self, name: str, wait: bool) -> str:
        assert name == "lores" and wait is False
        self.jobs += 1
        return f"job{self.jobs}"

    def wait(self, job: str, timeout: float) -> np.ndarray:
        if self.fail_wait is not None:
            raise self.fail_wait
        w, h = self.config["lores"]["size"]
        stride = w + 64  # rows are padded
        buf = np.full((h * 3 // 2, stride), 7, np.uint8)  # U/V planes and padding: 7
        buf[:h, :w] = 200  # Y plane
        return buf


def test_picamera2_frames_are_the_y_plane_at_the_configured_size() -> None:
    cam = FakePicamera2()
    src = Picamera2Source(width=320, height=240, camera_factory=lambda: cam, clock=lambda: 5.0)
    src.open()
    assert cam.config["lores"] == {"size": (320, 240), "format": "YUV420"}
    frame = src.read(timeout_s=0.5)
    assert frame.grey.shape == (240, 320) and (frame.grey == 200).all()
    assert frame.captured_at == 5.0
    src.close()
    assert cam.closed and not cam.started


def test_picamera2_continuous_autofocus_and_lower_exposure_where_supported() -> None:
    cam = FakePicamera2()
    src = Picamera2Source(exposure_ev_down=1.5, camera_factory=lambda: cam)
    src.open()
    assert cam.set["AfMode"] == 2  # libcamera AfModeContinuous
    assert cam.set["ExposureValue"] == -1.5
    assert src.has_autofocus

    fixed_focus = FakePicamera2(controls=("ExposureValue",))  # Camera Module 2, HQ
    src = Picamera2Source(camera_factory=lambda: fixed_focus)
    src.open()
    assert "AfMode" not in fixed_focus.set and not src.has_autofocus


def test_picamera2_failures_become_camera_errors() -> None:
    def no_camera() -> Any:
        raise IndexError("list index out of range")

    with pytest.raises(CameraError, match="no Pi camera"):
        Picamera2Source(camera_factory=no_camera).open()

    lost = FakePicamera2(fail_wait=RuntimeError("device gone"))
    src = Picamera2Source(camera_factory=lambda: lost)
    src.open()
    with pytest.raises(CameraError, match="lost"):
        src.read(timeout_s=0.1)


def test_picamera2_timeout_gives_none_and_keeps_the_capture_pending() -> None:
    cam = FakePicamera2(fail_wait=TimeoutError())
    src = Picamera2Source(camera_factory=lambda: cam)
    src.open()
    assert src.read(timeout_s=0.01) is None
    assert src.read(timeout_s=0.01) is None
    assert cam.jobs == 1


def test_picamera2_missing_library_is_a_camera_error() -> None:
    try:
        import picamera2  # noqa: F401
    except ImportError:
        with pytest.raises(CameraError, match="python3-picamera2"):
            Picamera2Source().open()
    else:  # pragma: no cover - on a Pi
        pytest.skip("picamera2 is installed here")


# --- choice by configuration ------------------------------------------------------------


def test_open_frame_source_chooses_by_name(tmp_path: Path) -> None:
    src = open_frame_source(CameraConfig(source="images", images_dir=tmp_path))
    assert isinstance(src, ImageFolderSource)
    assert isinstance(open_frame_source(CameraConfig(source="picamera2")), Picamera2Source)
    assert isinstance(open_frame_source(CameraConfig(source="none")), NullSource)
    with pytest.raises(CameraError, match="video"):
        open_frame_source(CameraConfig(source="video"))
    with pytest.raises(ConfigError, match="webcam"):
        open_frame_source(CameraConfig(source="webcam"))
