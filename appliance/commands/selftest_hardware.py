"""``appliance selftest``'s checks of the device's own hardware: the camera's frames and
the printed test card decoded and verified, every indicator output driven, the mDL
reader's Bluetooth controller, disk and memory headroom.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.commands.selftest import FAIL, PASS, WARN

if TYPE_CHECKING:
    from appliance.commands.selftest import Context

MIN_FREE_DISK_MB = 256
MIN_AVAILABLE_MEMORY_MB = 200  # kiosk 64 + web 48 MiB budgets, and room for a sync (96)


# -- camera and test card -----------------------------------------------------------------


def check_camera(ctx: Context) -> tuple[str, str]:
    from appliance.devices.camera import open_frame_source
    from appliance.devices.scanner import FrameScanner, make_decoder

    if ctx.config.camera.source == "none":
        ctx.facts["card"] = (WARN, "no camera configured (camera.source = none)")
        return WARN, "no camera configured (camera.source = none): scanner-only device"
    source = open_frame_source(ctx.config.camera)
    scanner = FrameScanner(make_decoder(ctx.config.scanner.backend, live=False))
    texts: set[str] = set()
    frames, started = 0, time.monotonic()
    source.open()
    try:
        while time.monotonic() - started < ctx.camera_s and not _card_seen(ctx, texts):
            frame = source.read(1.0)
            if frame is None:
                continue
            frames += 1
            if frames == 1:
                ctx.facts["frame_size"] = f"{frame.grey.shape[1]}x{frame.grey.shape[0]}"
            texts.update(scanner.scan(frame.grey))
    finally:
        source.close()
    elapsed = time.monotonic() - started
    ctx.facts["card_texts"] = texts
    if not frames:
        return FAIL, f"{ctx.config.camera.source}: no frame in {elapsed:.1f} s"
    return PASS, (
        f"{ctx.config.camera.source}: {frames} frames "
        f"({ctx.facts['frame_size']}) in {elapsed:.1f} s"
    )


def _card(ctx: Context) -> dict[str, Any]:
    if "card_doc" not in ctx.facts:
        ctx.facts["card_doc"] = json.loads(ctx.card.read_text())
    return ctx.facts["card_doc"]


def _card_seen(ctx: Context, texts: set[str]) -> bool:
    try:
        return _card(ctx)["text"] in texts
    except (OSError, ValueError, KeyError):
        return False


def check_card(ctx: Context) -> tuple[str, str]:
    from appliance.core.verifier import Checkpoint, verify
    from appliance.trust.source import snapshot_from_document

    if "card" in ctx.facts:
        return ctx.facts["card"]
    if ctx.operator and "card_texts" not in ctx.facts:
        ctx.ask("Hold the printed test card 15-30 cm in front of the camera, then press Enter")
    try:
        card = _card(ctx)
    except (OSError, ValueError) as e:
        return FAIL, f"test card file {ctx.card} unreadable: {e}"
    texts = ctx.facts.get("card_texts", set())
    if card["text"] not in texts:
        other = f"; {len(texts)} other code(s) decoded" if texts else ""
        return WARN, f"test card not seen in {ctx.camera_s:.0f} s{other} (focus, exposure?)"
    verdict = verify(
        card["text"],
        snapshot_from_document(card["trust"]),
        ctx.wall(),
        checkpoint=Checkpoint(check_staleness=False),
    )
    status = PASS if verdict.outcome.name == "PASS" else FAIL
    return status, f"test card decoded and verified: {verdict.outcome.name} {verdict.reason.name}"


# -- indicator ----------------------------------------------------------------------------


def check_indicator(ctx: Context) -> tuple[str, str]:
    cfg = ctx.config.indicator
    if cfg.backend == "none":
        return WARN, "no indicator configured (indicator.backend = none)"
    factory = ctx.pin_factory
    if factory is None and cfg.backend == "mock":
        from gpiozero.pins.mock import MockFactory

        factory = MockFactory()
    from gpiozero import DigitalOutputDevice

    outputs = {
        "green LED": cfg.green_pin,
        "red LED": cfg.red_pin,
        "amber LED": cfg.amber_pin,
        "buzzer": cfg.buzzer_pin,
        "relay": cfg.relay_pin,
    }
    driven: list[str] = []
    failed: list[str] = []
    for name, pin in outputs.items():
        if pin is None:
            continue
        device = DigitalOutputDevice(pin, active_high=cfg.active_high, pin_factory=factory)
        try:
            device.on()
            ok = device.value == 1 and device.pin.state == (1 if cfg.active_high else 0)
            if ctx.operator:
                ok = (
                    ctx.ask(f"Is the {name} (GPIO {pin}) on? [y/n] ")
                    .strip()
                    .lower()
                    .startswith("y")
                )
            else:
                ctx.sleep(0.5)
            device.off()
            ok = ok and device.value == 0
        finally:
            device.close()
        (driven if ok else failed).append(f"{name} {pin}")
    if failed:
        return FAIL, f"not working: {', '.join(failed)}"
    how = "confirmed by the operator" if ctx.operator else "driven (not observed)"
    return PASS, f"{', '.join(driven)}: {how}"


# -- Bluetooth and headroom ---------------------------------------------------------------


def check_headroom(ctx: Context) -> tuple[str, str]:
    state = ctx.config.paths.state_dir
    free_mb = shutil.disk_usage(state).free / 2**20
    available_mb = _meminfo_mb("MemAvailable")
    detail = f"disk {free_mb:,.0f} MiB free on {state}; memory {available_mb:,.0f} MiB available"
    if free_mb < MIN_FREE_DISK_MB or available_mb < MIN_AVAILABLE_MEMORY_MB:
        return WARN, f"{detail} (want {MIN_FREE_DISK_MB} and {MIN_AVAILABLE_MEMORY_MB})"
    return PASS, detail


def check_bluetooth(ctx: Context) -> tuple[str, str]:
    """The mDL reader's controller (spec mdl-reader s.8): present, absent or mDL off. A
    board without one passes with mDL off when the configuration says so; configured on
    without a controller is a warning, never a failure: every other format works."""
    from appliance.devices.bluetooth import OFF_CONFIG, mdl_state

    state = mdl_state(ctx.config.mdoc.transport)
    if state.enabled:
        return PASS, f"mDL on: {state.detail}"
    if state.off == OFF_CONFIG:
        return PASS, f"mDL off: {state.detail}"
    return WARN, f"mDL off: {state.detail}"


def _meminfo_mb(key: str) -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")
