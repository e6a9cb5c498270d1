"""The EmotionLens desktop window, in parts a reader can find by name.

* ``window``: the app shell (menus, toolbar, status bar, worker thread, face selection) and :func:`run`.
* ``photo_view``: the photo canvas (zoom, pan, boxes, tags and labels placed by app.layout, clicks).
* ``face_panel``: the side panel (sortable table, one row per face; the selected face's card and charts).
* ``messages``: what the window says to the user, and where folder labelling writes by default.
* ``worker``: the background thread that loads the models and labels photos and folders.
* ``folders``: the folder-labelling dialog and the run through app.batch.
"""

from app.gui.folders import label_folder
from app.gui.window import APP_NAME, App, run

__all__ = ["APP_NAME", "App", "label_folder", "run"]
