//! Containers as host processes (helper fills this in).
