//! basalt-net: placeholder until its issue lands.
