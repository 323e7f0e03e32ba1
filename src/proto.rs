//! Wire paths and the Unix-socket HTTP client (helper fills this in).
