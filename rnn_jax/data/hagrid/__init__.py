"""HaGRID in every layout people download, read in one place.

- :mod:`.layout` which layout a folder holds (v2 / 512p, the 30k mirror, v1, the sample's parts,
  plain class folders) and where its parts are;
- :mod:`.annotations` the one annotation schema (boxes, labels, people, landmarks in pixels);
- :mod:`.extract` the landmark rule per kind of picture, content-keyed chunks, the shared work
  list and shards; :mod:`.engines` who runs the chunks (this machine's cores or Dask);
- :mod:`.prepare` any root -> landmark split files (the landmark family);
- :mod:`.images` and :mod:`.parts_images` the image family (whole frames or hand crops).
"""

from rnn_jax.data.hagrid.layout import (
    HagridLayout,
    detect_hagrid_layout,
    looks_like_hagrid,
    resolve_layout,
)

__all__ = ["HagridLayout", "detect_hagrid_layout", "looks_like_hagrid", "resolve_layout"]
