//! basalt-wal
