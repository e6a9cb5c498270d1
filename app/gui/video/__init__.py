"""The window's video side: the analysis thread, the decoder, the player, the track table, the timeline,
the export of a video's results and the webcam mode."""
