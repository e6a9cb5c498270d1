"""The seven FER2013 classes in canonical order: index i is the label FER2013 writes as i.

Both training and the app import this, so the ONNX output order and the manifest agree by construction.
"""

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

# One colour per emotion (RGB), used for boxes, labels and bar charts.
COLORS: dict[str, tuple[int, int, int]] = {
    "angry": (220, 50, 47),
    "disgust": (133, 153, 0),
    "fear": (108, 113, 196),
    "happy": (255, 193, 7),
    "sad": (38, 139, 210),
    "surprise": (211, 54, 130),
    "neutral": (147, 161, 161),
}
