"""On-disk formats and their readers: the h5 benchmark layout, per-step pickles, TFRecords."""
