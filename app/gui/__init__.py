"""The EmotionLens desktop window, in parts a reader can find by name.

* ``window``: the app shell (menus, toolbar, status bar, worker thread, face selection) and :func:`run`.
* ``photo_view``: the photo canvas (zoom, pan, boxes, tags and labels placed by app.outputs._placement, clicks).
* ``face_panel``: the side panel (sortable table, one row per face; the selected face's card and charts).
* ``messages``: what the window says to the user, and where folder labelling writes by default.
* ``worker``: the background thread that loads the models and labels photos and folders.
* ``folders``: the folder-labelling dialog and the run through app.batch.
* ``dialogs``: every ``ask_*`` handler (file, folder, export and camera dialogs), the Details and About boxes.
* ``menus``: the menu bar and the About text (version, zoo, what its models were trained on).
* ``video_mode``: a video in the window: the player and the track table in place of the photo, the analysis
  with progress and Cancel, the export. Its parts: ``player`` (frame, transport, seek slider),
  ``decoder`` (the player's decoding thread), ``timeline_view`` (the selected track's chart, click to seek),
  ``track_panel`` (one row per track), ``analysis`` (app.video._pipeline on a thread, results kept small) and
  ``video_export`` (frames.csv, tracks.csv, timelines/, the annotated MP4).
* ``webcam``: a camera (or a file played live) labelled as it comes, with Record to CSV (app.video._live).
"""

from app.gui.folders import label_folder
from app.gui.window import APP_NAME, App, run, run_gui

__all__ = ["APP_NAME", "App", "label_folder", "run", "run_gui"]
