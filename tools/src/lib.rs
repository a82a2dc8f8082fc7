//! basalt-tools: placeholder until its issue lands.
