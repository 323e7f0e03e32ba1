//! Manifest files → validated, defaulted objects (helper fills this in).
