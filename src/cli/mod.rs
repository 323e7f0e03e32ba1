//! The `jobvisor` command line (helper fills this in).
