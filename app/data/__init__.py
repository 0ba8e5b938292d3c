"""From files to training data: image and video loading, optical flow, spectral volume shards."""
