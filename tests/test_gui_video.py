"""The window with a video: player, analysis with progress and Cancel, track table, timeline, export, and the
webcam view, driven under a private Xvfb with real Tk events (see tests/test_gui.py for the fixtures).

The clip is made here: the sample portrait panned slowly across a 320x240 frame, so the tiny test zoo's
detector finds one face that the tracker follows through the clip.
"""

from __future__ import annotations

import csv
import inspect
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.test_gui import WAIT, _click, _key, make_app, xdisplay  # noqa: F401 - fixtures
from tests.video_synth import pan_frames, write_clip

pytestmark = pytest.mark.gui

tk = pytest.importorskip("tkinter")

FPS = 24
FRAMES = 48  # 2 s


def _scene(sample: Path) -> np.ndarray:
    face = Image.open(sample).convert("RGB").resize((150, 150))
    scene = np.full((360, 700, 3), (90, 110, 130), np.uint8)
    scene[100:250, 280:430] = np.asarray(face)
    return scene


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory, sample_photo) -> Path:
    """A 2 s 320x240 MP4 (24 fps, no sound) with one face moving slowly right to left."""
    path = tmp_path_factory.mktemp("clips") / "face clip.mp4"
    return write_clip(path, pan_frames(_scene(sample_photo), FRAMES, (320, 240), (200, 40), (120, 60)), fps=FPS)


def _pump(app, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.root.update()
        time.sleep(0.01)


def _until(app, what, timeout: float = WAIT) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        app.root.update()
        if what():
            return True
        time.sleep(0.01)
    return False


def _opened(make_app, tiny_zoo, clip):
    app = make_app(zoo_dir=tiny_zoo)
    app.open_video(clip)
    assert app.wait_idle(WAIT), app.status()
    return app


def test_video_plays_steps_and_seeks_with_a_track_table(make_app, tiny_zoo, face_clip, sample_photo):
    app = _opened(make_app, tiny_zoo, face_clip)
    player = app.video.player
    assert player.frame.winfo_ismapped() and not app.canvas.winfo_ismapped()  # the player took the photo's place
    assert "face clip.mp4" in app.root.title()
    assert "1 track in 48 frames" in app.status(), app.status()
    rows = app.video.track_rows()
    assert len(rows) >= 1
    track, in_view, dominant, *labels = rows[0]
    assert track == "1" and in_view == "0:02" and dominant in ("angry", "disgust", "fear", "happy", "sad",
                                                               "surprise", "neutral")
    names = [m.name for m in app.labeler.models]
    assert len(labels) == len(names) and all(v.endswith("%") for v in labels)  # frame 0: the face is in view
    c = player.view.canvas
    assert player.current.index == 0 and c.find_withtag("box") and c.find_withtag("boxlabel")

    # Space (on the focused frame) plays; the clock moves the frames on; Space again pauses.
    c.focus_force()
    _key(c, "space")
    assert player.playing and "Pause" in str(player.play_btn.cget("text"))
    assert _until(app, lambda: player.current.index >= 6, 10), player.current.index
    _key(c, "space")
    assert not player.playing
    # Frame steps: Right/period on, Left/comma back, one frame each.
    i = player.current.index
    _key(c, "Right")
    assert _until(app, lambda: player.current.index == i + 1, 10)
    _key(c, "period")
    assert _until(app, lambda: player.current.index == i + 2, 10)
    _key(c, "Left")
    assert _until(app, lambda: player.current.index == i + 1, 10)
    assert not player.playing

    # The selected track's timeline: a click seeks to the time under the pointer.
    tl = player.timeline
    assert app.video.selected == 1 and tl.canvas.find_withtag("chart") and tl.canvas.find_withtag("cursor")
    h = tl.canvas.winfo_height()
    _click(tl.canvas, tl.x_of(1.5), h / 2)
    assert _until(app, lambda: abs(player.current.time_s - 1.5) <= 1.5 / FPS, 10), player.current.time_s
    assert player.current.index == round(player.current.time_s * FPS)  # the frame shown at the clicked time
    cursor = tl.canvas.coords(tl.canvas.find_withtag("cursor")[0])
    assert abs(cursor[0] - tl.x_of(player.current.time_s)) < 2
    # The slider follows the frame, and moving it seeks; End and Home jump.
    assert abs(player.pos_var.get() - player.current.time_s) < 1e-6
    player.slider.set(0.5)
    assert _until(app, lambda: player.current.index == 12, 10), player.current.index
    _key(c, "End")
    assert _until(app, lambda: player.current.index == FRAMES - 1, 10)
    _key(c, "Home")
    assert _until(app, lambda: player.current.index == 0, 10)

    # A photo afterwards: the photo and its face table come back.
    app.open_image(sample_photo)
    assert app.wait_idle(WAIT) and len(app.face_rows()) == 1
    assert app.canvas.winfo_ismapped() and not player.frame.winfo_ismapped()


def test_video_opened_before_the_models_load_gets_their_columns(xdisplay, tiny_zoo, face_clip):
    """A video given at start (``python -m app clip.mp4``) is opened while the models still load: the track
    table gains each model's column when the analysis starts, as when the video is opened later."""
    from app.gui import App
    from app.models import Labeler

    def slow_labeler():
        time.sleep(1.0)
        return Labeler(tiny_zoo, threads=1)

    app = App(tk.Tk(), zoo_dir=tiny_zoo, labeler_factory=slow_labeler)
    try:
        app.open_video(face_clip)
        assert app.labeler is None  # still loading
        assert app.wait_idle(WAIT), app.status()
        names = [m.display_name for m in app.labeler.models]
        assert [app.video.tracks.tree.heading(c, "text") for c in app.video.tracks.tree["columns"]] == [
            "Track", "In view", "Dominant", *names]
        assert app.video.track_rows() and all(len(r) == 3 + len(names) for r in app.video.track_rows())
    finally:
        app.quit()


def test_export_writes_csvs_charts_and_annotated_video(make_app, tiny_zoo, face_clip, tmp_path):
    from app.outputs import frames_header, tracks_header
    from app.video import frame_at, probe

    app = _opened(make_app, tiny_zoo, face_clip)
    out = tmp_path / "results"
    assert app.export_video(out)
    assert app.wait_idle(WAIT), app.status()
    assert app.status().startswith(f"Exported to {out}"), app.status()
    assert "no sound" in app.status()
    with open(out / "frames.csv", newline="", encoding="utf-8") as f:
        frames = list(csv.reader(f))
    assert frames[0] == frames_header(app.labeler.models)
    assert len(frames) - 1 == sum(len(r.faces) for r in app.video.store.records) >= FRAMES - 2
    assert {r[0] for r in frames[1:]} == {str(face_clip)} and {r[3] for r in frames[1:]} == {"1"}
    with open(out / "tracks.csv", newline="", encoding="utf-8") as f:
        tracks = list(csv.reader(f))
    assert tracks[0] == tracks_header() and len(tracks) == 2 and tracks[1][1] == "1"
    assert tracks[1][5] == app.video.track_rows()[0][2]  # the table's dominant emotion is tracks.csv's
    charts = sorted(p.name for p in (out / "timelines").glob("*.png"))
    assert charts == ["overview.png", "track1.png"]
    video = out / "face clip_annotated.mp4"
    info = probe(video)
    assert (info.width, info.height) == (320, 240) and info.frames == FRAMES and info.codec == "h264"
    drawn = frame_at(video, 1.0).rgb.astype(int)
    plain = frame_at(face_clip, 1.0).rgb.astype(int)
    assert np.abs(drawn - plain).max() > 100  # boxes and labels are in the copy
    # Back to photos: nothing to export, and the status says why.
    app.video.close()
    assert not app.export_video(tmp_path / "nothing")
    assert "open a video first" in app.status()


def test_cancel_stops_the_analysis(make_app, tiny_zoo, sample_photo, tmp_path):
    n = 600  # 25 s: far longer than the cancel takes
    clip = write_clip(tmp_path / "long.mp4", pan_frames(_scene(sample_photo), n, (320, 240), (200, 40), (120, 60)),
                      fps=FPS)
    app = make_app(zoo_dir=tiny_zoo)
    app.open_video(clip)
    assert _until(app, lambda: len(app.video.store) > 0, WAIT)
    cancel = app.video.cancel_btn
    assert cancel.winfo_ismapped() and app.video.progress.winfo_ismapped()
    assert app.status().startswith("Analysing long.mp4:") and f"/{n} frames" in app.status()
    assert app.export_video(tmp_path / "too early") is False and "Still analysing" in app.status()
    cancel.invoke()
    assert app.wait_idle(WAIT)
    assert "Analysis cancelled" in app.status(), app.status()
    assert 0 < len(app.video.store) < n
    assert not cancel.winfo_ismapped()
    assert app.video.player.current is not None  # still plays
    # The part analysed can be exported: the toolbar's Export button is on.
    assert str(app.save_btn.cget("state")) == "normal" and "Export" in str(app.save_btn.cget("text"))


def test_unreadable_video_is_a_message_not_a_traceback(make_app, tiny_zoo, sample_photo, tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    renamed = tmp_path / "photo.mov"
    renamed.write_bytes(sample_photo.read_bytes())
    app = make_app(zoo_dir=tiny_zoo)
    for path in (bad, renamed):
        app.open_video(path)
        assert app.wait_idle(WAIT)
        assert app.status().startswith(f"Cannot open {path.name}:"), app.status()
        assert "\n" not in app.status()
        text = app.video.message_text()
        assert text.startswith(f"Cannot play {path.name}.") and "Choose another video" in text
        assert app.video.track_rows() == []
        assert not app.export_video(tmp_path / "out")
    assert "open it as a photo" in app.video.message_text()
    # Cut off part-way (an interrupted download): the part before the damage is analysed and plays.
    pan = pan_frames(_scene(sample_photo), FRAMES, (320, 240), (200, 40), (120, 60))
    whole = write_clip(tmp_path / "whole.mp4", pan, fps=FPS, container_options={"movflags": "+faststart"})
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.6)])
    app.open_video(cut)
    assert app.wait_idle(WAIT)
    assert app.status().startswith("cut.mp4 is damaged: stopped at frame") and "The part before it is analysed" \
        in app.status(), app.status()
    n = len(app.video.store)
    assert 0 < n < FRAMES and len(app.video.track_rows()) == 1 and app.video.message_text() == ""
    player = app.video.player
    player.play()
    assert _until(app, lambda: not player.playing, 20)
    assert player.current.index == n - 1 and app.status().startswith("The video cannot be played further:")
    assert "Traceback" not in capsys.readouterr().err


def test_webcam_view_labels_live_and_records(make_app, tiny_zoo, face_clip, tmp_path):
    """A video file played live stands in for a camera (the machine has none): boxes, the processed frames/s,
    Record to CSV."""
    pytest.importorskip("app.video._live")
    from app.gui.window import run_gui

    assert "webcam" in inspect.signature(run_gui).parameters  # python -m app --webcam opens the window on it
    app = make_app(zoo_dir=tiny_zoo)
    record = tmp_path / "live.csv"
    assert app.start_webcam(str(face_clip), record=record)
    cam = app.webcam
    assert _until(app, lambda: cam.shown >= 5 and cam.view.canvas.find_withtag("box"), WAIT)
    assert "frames/s processed" in cam.rate_var.get()
    assert _until(app, lambda: not cam.running, WAIT)  # the file ends like an unplugged camera
    assert "frames labelled" in app.status() and "frames/s processed" in app.status()
    with open(record, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0][:4] == ["video", "frame", "time_s", "track"] and len(rows) > 5
    assert cam.tracks.rows() and cam.tracks.rows()[0][0] == "1"
    assert app.start_webcam(7)  # no such camera: a message, not an exception
    assert _until(app, lambda: "Cannot start camera 7" in app.status(), WAIT), app.status()
    assert cam.view.message.startswith("Cannot start camera 7")
