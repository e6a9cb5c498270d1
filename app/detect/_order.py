"""The reading order of faces: rows top to bottom, then left to right, as people read a group photo.

Faces whose vertical centres differ by less than half a face height are one row, so a head tilted or a person
standing a step back does not start a new row (sorting by y alone would zig-zag; by x alone, what the app did
before, puts face 1 at the bottom left and face 2 halfway up). Every output numbers faces by this rule.
"""

from __future__ import annotations

from collections.abc import Sequence

ROW_TOLERANCE = 0.5  # fraction of the face height two centres may differ by and still share a row


def reading_order(boxes: Sequence[tuple[float, float, float, float]]) -> list[int]:
    """Indices of ``boxes`` (x, y, w, h) in reading order: rows top to bottom, each row left to right.

    A face joins the current row when its centre lies within ``ROW_TOLERANCE`` x the row's mean face height
    of the row's mean centre; rows are built top down from the faces sorted by centre y.
    """
    items = sorted(range(len(boxes)), key=lambda i: (boxes[i][1] + boxes[i][3] / 2, boxes[i][0]))
    rows: list[list[int]] = []
    for i in items:
        cy = boxes[i][1] + boxes[i][3] / 2
        if rows:
            row = rows[-1]
            mean_cy = sum(boxes[j][1] + boxes[j][3] / 2 for j in row) / len(row)
            mean_h = sum(boxes[j][3] for j in row) / len(row)
            if cy - mean_cy <= ROW_TOLERANCE * max(mean_h, boxes[i][3]):
                row.append(i)
                continue
        rows.append([i])
    return [i for row in rows for i in sorted(row, key=lambda j: boxes[j][0] + boxes[j][2] / 2)]
