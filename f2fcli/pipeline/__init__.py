"""The reenactment pipeline: crop, source cache, motion transfer, chunked runner, paste-back."""
